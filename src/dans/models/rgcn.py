"""A basis-decomposed RGCN layer built on sparse aggregation (Schlichtkrull et al., 2018; Eq. 1)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import torch
from torch import LongTensor, Tensor, nn
from torch.autograd.function import FunctionCtx

from dans.errors import ConfigError


class RelationalGraph(nn.Module):
    """The training graph prepared once for message passing.

    Each triple (h, r, t) gives an edge h -> t of type r and an edge t -> h of type r + R, so a
    layer sees 2R edge types. Edges are grouped into (destination, type) pairs: a layer first
    averages the sources of each pair (one sparse product with fixed values), then applies the
    pair's relation matrix, then sums pairs into their destination (a second fixed sparse
    product), so the dense work scales with the number of pairs rather than of edges.

    The sparse matrices are kept as their CSR parts (row starts, columns, values) in buffers
    outside the state dict, so ``.to()`` and dtype changes move them like any buffer and data
    parallelism broadcasts plain tensors; each use rebuilds the matrix from its parts, a view.
    """

    def __init__(self, triples: LongTensor, num_entities: int, num_relations: int) -> None:
        """``triples``: shape (N, 3) training (head, relation, tail) ids."""
        super().__init__()
        heads, rels, tails = triples.unbind(1)
        src = torch.cat([heads, tails])
        dst = torch.cat([tails, heads])
        edge_type = torch.cat([rels, rels + num_relations])
        self.num_entities = num_entities
        self.num_edge_types = 2 * num_relations
        # Pairs sorted by type, so each type's pairs form one contiguous block.
        pair_key, edge_pair, pair_size = torch.unique(
            edge_type * num_entities + dst, return_inverse=True, return_counts=True
        )
        self.num_pairs = len(pair_key)
        pair_dst = pair_key % num_entities
        pair_type = pair_key // num_entities
        self.type_sizes = torch.bincount(pair_type, minlength=self.num_edge_types).tolist()
        weights = 1.0 / pair_size[edge_pair].float()
        self._shapes: dict[str, tuple[int, int]] = {}
        self._store_with_transpose("mean", edge_pair, src, weights, (self.num_pairs, num_entities))
        self._store_with_transpose(
            "gather",
            pair_dst,
            torch.arange(self.num_pairs, device=triples.device),
            torch.ones(self.num_pairs, device=triples.device),
            (num_entities, self.num_pairs),
        )

    def neighbour_means(self, x: Tensor) -> Tensor:
        """shape: (E, d) -> (P, d), the mean source embedding of each (type, destination) pair."""
        return _SparseProduct.apply(x, self.matrix("mean"), self.matrix("mean_t"))

    def sum_into_destinations(self, messages: Tensor) -> Tensor:
        """shape: (P, d) -> (E, d), each pair's message added to its destination."""
        return _SparseProduct.apply(messages, self.matrix("gather"), self.matrix("gather_t"))

    def matrix(self, name: str) -> Tensor:
        """The CSR matrix ``name`` (mean, mean_t, gather or gather_t), on the buffers' device and
        dtype."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                getattr(self, f"{name}_row_starts"),
                getattr(self, f"{name}_columns"),
                getattr(self, f"{name}_values"),
                self._shapes[name],
                check_invariants=False,
            )

    def extra_repr(self) -> str:
        return (
            f"entities={self.num_entities}, edge_types={self.num_edge_types}, "
            f"pairs={self.num_pairs}"
        )

    def _store_with_transpose(
        self, name: str, rows: LongTensor, cols: LongTensor, values: Tensor, shape: tuple[int, int]
    ) -> None:
        """Keep the matrix with ``values`` at (``rows``, ``cols``) as ``name`` and its transpose
        as ``name``_t; repeated coordinates add up."""
        self._store(name, rows, cols, values, shape)
        self._store(f"{name}_t", cols, rows, values, (shape[1], shape[0]))

    def _store(
        self, name: str, rows: LongTensor, cols: LongTensor, values: Tensor, shape: tuple[int, int]
    ) -> None:
        order = torch.argsort(rows * shape[1] + cols)
        row_starts = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
        row_starts[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
        self.register_buffer(f"{name}_row_starts", row_starts, persistent=False)
        self.register_buffer(f"{name}_columns", cols[order], persistent=False)
        self.register_buffer(f"{name}_values", values[order], persistent=False)
        self._shapes[name] = shape


class _SparseProduct(torch.autograd.Function):
    """``matrix @ x`` with a fixed sparse matrix whose transpose is precomputed for the backward."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, matrix: Tensor, matrix_t: Tensor) -> Tensor:
        ctx.matrix_t = matrix_t  # type: ignore[attr-defined]
        return matrix @ x

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.matrix_t @ grad, None, None  # type: ignore[attr-defined]


class _SegmentedProduct(torch.autograd.Function):
    """Row block ``t`` of ``x`` times the block-diagonal matrix ``diag(weights[t, 0], ...,
    weights[t, K - 1])``: shapes (P, K * i), (T, K, i, o), T sizes -> (P, K * o). With K = 1,
    a full matrix per type.

    The same arithmetic as a product per block and a concatenation, but each product writes into
    its slice of one output (and of one gradient) in place: no concatenation, no per-block
    autograd nodes, and no zero-filled gradient buffers, which dominated the step on graphs with
    hundreds of edge types.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, weights: Tensor, sizes: list[int]) -> Tensor:
        ctx.save_for_backward(x, weights)
        ctx.sizes = sizes  # type: ignore[attr-defined]
        out = x.new_empty(len(x), weights.shape[1] * weights.shape[3])
        for t, rows in _blocks(sizes):
            _block_product(x[rows], weights[t], out[rows])
        return out

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, weights = ctx.saved_tensors  # type: ignore[attr-defined]
        grad = grad.contiguous()
        grad_x = x.new_empty(x.shape) if ctx.needs_input_grad[0] else None
        # Types with no pairs keep a zero gradient; every other one is overwritten below.
        grad_weights = torch.zeros_like(weights) if ctx.needs_input_grad[1] else None
        for t, rows in _blocks(ctx.sizes):  # type: ignore[attr-defined]
            if grad_x is not None:
                _block_product(grad[rows], weights[t].transpose(1, 2), grad_x[rows])
            if grad_weights is not None:
                torch.bmm(
                    _by_block(x[rows], len(weights[t])).transpose(1, 2),
                    _by_block(grad[rows], len(weights[t])),
                    out=grad_weights[t],
                )
        return grad_x, grad_weights, None


def _block_product(x: Tensor, weights: Tensor, out: Tensor) -> None:
    """``out = x @ diag(weights[0], ..., weights[K - 1])``: shapes (n, K * i), (K, i, o), into
    (n, K * o). One matrix product straight into ``out`` for K = 1."""
    if len(weights) == 1:
        torch.mm(x, weights[0], out=out)
    else:
        out.view(len(x), len(weights), -1).copy_(
            torch.bmm(_by_block(x, len(weights)), weights).transpose(0, 1)
        )


def _by_block(x: Tensor, blocks: int) -> Tensor:
    """shape (n, K * i) -> (K, n, i), a view: the columns of each diagonal block, batched."""
    return x.view(len(x), blocks, -1).transpose(0, 1)


def _blocks(sizes: list[int]) -> Iterator[tuple[int, slice]]:
    """(block index, its rows) for each non-empty block of consecutive rows."""
    start = 0
    for t, size in enumerate(sizes):
        if size:
            yield t, slice(start, start + size)
        start += size


class RGCNLayer(nn.Module):
    """``x_i' = sum_r W_r mean_{j in N_i^r} x_j + W_0 x_i + b``.

    ``W_r = sum_b a_rb V_b`` over ``num_bases`` shared bases (basis decomposition, Eq. 1), or,
    with ``num_blocks``, ``W_r`` block-diagonal with that many square blocks of its own (the
    RGCN paper's block decomposition): a product per pair then costs ``d^2 / num_blocks``, so a
    wider layer costs about what a narrow one does with bases. The activation of Eq. 1 is
    applied by the encoder, so the last layer can stay linear.
    """

    def __init__(
        self, in_dim: int, out_dim: int, num_edge_types: int, num_bases: int, num_blocks: int = 0
    ) -> None:
        super().__init__()
        if num_blocks:
            if in_dim % num_blocks or out_dim % num_blocks:
                raise ConfigError(
                    f"--blocks must divide the layer's widths ({in_dim}, {out_dim}), got "
                    f"{num_blocks}"
                )
            shape = (num_edge_types, num_blocks, in_dim // num_blocks, out_dim // num_blocks)
            self.blocks = nn.Parameter(torch.empty(shape))
        else:
            self.bases = nn.Parameter(torch.empty(num_bases, in_dim, out_dim))
            self.coefficients = nn.Parameter(torch.empty(num_edge_types, num_bases))
        self.num_edge_types = num_edge_types
        self.num_blocks = num_blocks
        self.self_weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform bases (as one stacked matrix) and coefficients, or each diagonal block
        on its own; Xavier-uniform self-weight; zero bias."""
        if self.num_blocks:
            _, _, block_in, block_out = self.blocks.shape
            bound = math.sqrt(6.0 / (block_in + block_out))
            nn.init.uniform_(self.blocks, -bound, bound)
        else:
            num_bases, in_dim, out_dim = self.bases.shape
            nn.init.xavier_uniform_(self.bases.view(num_bases * in_dim, out_dim))
            nn.init.xavier_uniform_(self.coefficients)
        nn.init.xavier_uniform_(self.self_weight)
        nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        in_dim, out_dim = self.self_weight.shape
        shared = f"blocks={self.num_blocks}" if self.num_blocks else f"bases={len(self.bases)}"
        return f"in_dim={in_dim}, out_dim={out_dim}, edge_types={self.num_edge_types}, {shared}"

    def relation_weights(self) -> Tensor:
        """Each edge type's matrix as its diagonal blocks, shape (T, K, in / K, out / K); K = 1
        for bases."""
        if self.num_blocks:
            return self.blocks
        return torch.einsum("rb,bio->rio", self.coefficients, self.bases)[:, None]

    def forward(self, x: Tensor, graph: RelationalGraph) -> Tensor:
        """shape: (E, in_dim) -> (E, out_dim)."""
        # One product per edge type over that type's contiguous block of pairs: the loop runs
        # over the 2R types, never over edges or entities.
        messages = _SegmentedProduct.apply(
            graph.neighbour_means(x), self.relation_weights(), graph.type_sizes
        )
        return graph.sum_into_destinations(messages) + x @ self.self_weight + self.bias
