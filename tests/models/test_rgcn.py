"""The sparse RGCN layer against the edge-by-edge reference, the encoder, device moves."""

from types import SimpleNamespace

import pytest
import torch

from dans.errors import ConfigError
from dans.models import DECODERS, KGModel, RelationalGraph, RGCNEncoder, RGCNLayer
from dans.models.encoders import RGCNOptions
from dans.models.rgcn import SortedEdges, _SegmentedProduct

E, R = 12, 4  # relation 3 never occurs, entity 11 is isolated


def reference_rgcn_layer(layer, x, triples, num_relations):
    """Eq. 1 written directly: edge by edge, with explicit per-relation matrices (a basis
    combination, or the diagonal blocks laid out as a full matrix)."""
    if layer.num_blocks:
        weights = torch.stack([torch.block_diag(*blocks) for blocks in layer.blocks])
    else:
        weights = torch.einsum("rb,bio->rio", layer.coefficients, layer.bases)
    heads, rels, tails = triples.unbind(1)
    src = torch.cat([heads, tails])
    dst = torch.cat([tails, heads])
    edge_type = torch.cat([rels, rels + num_relations])
    out = x @ layer.self_weight + layer.bias
    rows = []
    for i in range(len(x)):
        total = torch.zeros_like(out[i])
        for r in edge_type.unique():
            sources = src[(dst == i) & (edge_type == r)]
            if len(sources):
                total = total + x[sources].mean(0) @ weights[r]
        rows.append(total)
    return out + torch.stack(rows)


def _triples(seed=0, n=40):
    generator = torch.Generator().manual_seed(seed)
    heads = torch.randint(E - 1, (n,), generator=generator)
    rels = torch.randint(R - 1, (n,), generator=generator)
    tails = torch.randint(E - 1, (n,), generator=generator)
    triples = torch.stack([heads, rels, tails], 1)
    triples[0] = torch.tensor([3, 1, 3])  # a self-loop
    triples[1] = triples[2]  # a duplicate
    triples[5] = triples[2]  # a triplicate
    return triples


def _grads(output, upstream, tensors):
    return torch.autograd.grad(output, tensors, grad_outputs=upstream, retain_graph=True)


@pytest.mark.parametrize(
    "in_dim, out_dim, bases, blocks, entities_first",
    [
        (5, 4, 2, 0, False),
        (5, 4, 2, 0, True),
        (3, 3, 1, 0, False),
        (3, 3, 1, 0, True),
        (6, 4, 0, 2, False),
        (6, 9, 0, 3, False),
    ],
)
def test_layer_output_and_gradients_match_reference(
    monkeypatch, in_dim, out_dim, bases, blocks, entities_first
):
    monkeypatch.setattr(RGCNLayer, "projects_entities_first", lambda self, graph: entities_first)
    torch.manual_seed(1)
    triples = _triples()
    assert 11 not in triples[:, [0, 2]]
    assert 3 not in triples[:, 1]
    graph = RelationalGraph(triples, E, R)
    layer = RGCNLayer(in_dim, out_dim, graph.num_edge_types, bases, blocks)
    with torch.no_grad():
        layer.bias.normal_()  # zeros by default; make its gradient path visible
    x = torch.randn(E, in_dim, requires_grad=True)
    fast = layer(x, graph)
    reference = reference_rgcn_layer(layer, x, triples, R)
    assert fast.shape == (E, out_dim)
    assert torch.allclose(fast, reference, atol=1e-5)
    upstream = torch.randn(E, out_dim)
    tensors = [x, *layer.parameters()]
    for fast_grad, reference_grad, name in zip(
        _grads(fast, upstream, tensors),
        _grads(reference, upstream, tensors),
        ["x"] + [name for name, _ in layer.named_parameters()],
        strict=True,
    ):
        assert torch.allclose(fast_grad, reference_grad, atol=1e-5), name
    # The unused relation (types 3 and 3 + R) gets no gradient on its own parameters.
    own = layer.blocks if blocks else layer.coefficients
    own_grad = _grads(fast, upstream, [own])[0]
    assert own_grad[[3, 3 + R]].abs().max() == 0
    assert own_grad[[0, 1, 2]].abs().flatten(1).amax(1).min() > 0


def test_entities_go_through_the_bases_first_when_that_costs_less():
    # UMLS-like: 135 entities, 92 edge types, 4 bases, 6,259 edges in 1,371 pairs, width 100.
    # By pair: 1,371 * 100 * 100 + 30 * 6,259 * 100 + 92 * 2M = 13.7M + 18.8M + 184M = 216.5M;
    # by basis: 135 * 4 * 100 * 100 + 30 * 4 * 100 * (6,259 + 1,371) = 5.4M + 91.6M = 97M.
    layer = RGCNLayer(100, 100, 92, num_bases=4)
    umls = {"num_entities": 135, "num_edge_types": 92, "num_edges": 6259, "num_pairs": 1371}
    assert layer.projects_entities_first(SimpleNamespace(**umls))
    # FB15k-237-like: 14,541 entities, 474 types, 326,000 edges, 110,003 pairs. By pair
    # 1.10G + 0.98G + 0.95G = 3.03G; by basis 0.58G + 30 * 400 * 436,003 = 5.81G.
    layer = RGCNLayer(100, 100, 474, num_bases=4)
    fb = {"num_entities": 14541, "num_edge_types": 474, "num_edges": 326000, "num_pairs": 110003}
    assert not layer.projects_entities_first(SimpleNamespace(**fb))
    # The boundary: 10 entities, 2 types, 4 bases, width 10, 100 edges: by pair 100 P +
    # 30,000 + 4M, by basis 4,000 + 1,200 * (100 + P), equal at P = 3,550.9.
    small = RGCNLayer(10, 10, 2, num_bases=4)
    graph = {"num_entities": 10, "num_edge_types": 2, "num_edges": 100}
    assert small.projects_entities_first(SimpleNamespace(**graph, num_pairs=3550))
    assert not small.projects_entities_first(SimpleNamespace(**graph, num_pairs=3551))
    # With 20 types the products cost 36M more: at 10,000 pairs, by basis again.
    wider = graph | {"num_edge_types": 20}
    assert small.projects_entities_first(SimpleNamespace(**wider, num_pairs=10000))


@pytest.mark.parametrize("diagonal_blocks", [1, 3])
def test_segmented_product_matches_per_block_products_and_gradcheck(diagonal_blocks):
    torch.manual_seed(0)
    sizes = [3, 0, 1, 4, 0]  # empty row blocks in the middle and at the end
    k = diagonal_blocks
    x = torch.randn(sum(sizes), 3 * k, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(len(sizes), k, 3, 2, dtype=torch.float64, requires_grad=True)
    out = _SegmentedProduct.apply(x, weights, sizes)
    expected = torch.cat(
        [
            rows @ torch.block_diag(*weight)
            for rows, weight in zip(x.split(sizes), weights, strict=True)
        ]
    )
    torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(lambda a, b: _SegmentedProduct.apply(a, b, sizes), (x, weights))
    grads = torch.autograd.grad(out.sum(), weights)[0]
    assert torch.equal(grads[1], torch.zeros(k, 3, 2, dtype=torch.float64))


def test_graph_counts_types_and_pairs():
    triples = _triples()
    graph = RelationalGraph(triples, E, R)
    assert graph.num_edge_types == 2 * R
    # One pair per distinct (edge type, destination), computed here with a Python set.
    pairs = {(r, t) for _, r, t in triples.tolist()} | {(r + R, h) for h, r, _ in triples.tolist()}
    assert graph.num_pairs == len(pairs)
    assert sum(graph.type_sizes) == len(pairs)
    assert graph.type_sizes == [sum(1 for r, _ in pairs if r == k) for k in range(2 * R)]
    assert graph.num_edges == 2 * len(triples)  # duplicates stay: they weigh in the means


def test_mean_aggregation_by_hand():
    # Entity 0 receives edges of relation 0 from entities 1 and 2; entity 3 has a self-loop of
    # relation 0; entity 4 is isolated. Identity basis, coefficient 1 for relation 0's forward
    # type and 10 for its inverse type, no self weight, no bias:
    #   out[0] = mean(x1, x2)            (forward type)
    #   out[1] = out[2] = 10 * x0        (inverse type: 0 -> 1 and 0 -> 2)
    #   out[3] = x3 + 10 * x3            (the self-loop is an edge of both types)
    #   out[4] = 0
    triples = torch.tensor([[1, 0, 0], [2, 0, 0], [3, 0, 3]])
    graph = RelationalGraph(triples, 5, 1)
    layer = RGCNLayer(2, 2, graph.num_edge_types, 1)
    with torch.no_grad():
        layer.bases.copy_(torch.eye(2)[None])
        layer.coefficients.copy_(torch.tensor([[1.0], [10.0]]))
        layer.self_weight.zero_()
        layer.bias.zero_()
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0], [7.0, 11.0], [13.0, 17.0], [19.0, 23.0]])
    out = layer(x, graph)
    expected = torch.tensor([[5.0, 8.0], [10.0, 20.0], [10.0, 20.0], [143.0, 187.0], [0.0, 0.0]])
    assert torch.allclose(out, expected)
    # Not the sum: out[0] would be (10, 16).
    assert not torch.allclose(out[0], x[1] + x[2])


def test_self_weight_and_bias_by_hand():
    triples = torch.tensor([[0, 0, 1]])
    graph = RelationalGraph(triples, 3, 1)
    layer = RGCNLayer(2, 2, graph.num_edge_types, 1)
    with torch.no_grad():
        layer.coefficients.zero_()
        layer.self_weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
        layer.bias.copy_(torch.tensor([1.0, -1.0]))
    x = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 4.0]])
    expected = torch.tensor([[3.0, 2.0], [5.0, -1.0], [1.0, 11.0]])
    assert torch.allclose(layer(x, graph), expected)


def _encoder(dim=6, layers=2, dropout=0.2, edge_dropout=0.0, seed=2):
    torch.manual_seed(seed)
    options = RGCNOptions(layers=layers, bases=3, dropout=dropout, edge_dropout=edge_dropout)
    return RGCNEncoder(E, R, dim, _triples(), options)


def test_encoder_shape_and_reference_composition():
    encoder = _encoder().eval()
    out = encoder()
    assert out.shape == (E, 6)
    # Eval mode: no dropout, so the encoder is layer 2 after ReLU after layer 1, nothing else.
    first = reference_rgcn_layer(encoder.layers[0], encoder.embeddings.weight, _triples(), R)
    second = reference_rgcn_layer(encoder.layers[1], first.relu(), _triples(), R)
    assert torch.allclose(out, second, atol=1e-5)
    # The last layer is linear: its output has negative entries.
    assert (out < 0).any()


def test_encoder_single_layer_and_dropout():
    encoder = _encoder(layers=1).eval()
    expected = reference_rgcn_layer(encoder.layers[0], encoder.embeddings.weight, _triples(), R)
    assert torch.allclose(encoder(), expected, atol=1e-5)
    # Dropout only acts in training mode, between layers.
    encoder = _encoder(dropout=0.5)
    encoder.train()
    torch.manual_seed(0)
    a = encoder()
    torch.manual_seed(1)
    b = encoder()
    assert not torch.allclose(a, b)
    encoder.eval()
    assert torch.equal(encoder(), encoder())


def test_encoder_options_refuse_bad_sizes():
    with pytest.raises(ConfigError, match="--layers must be at least 1"):
        RGCNOptions(layers=0)
    with pytest.raises(ConfigError, match="--bases must be at least 1"):
        RGCNOptions(bases=0)
    with pytest.raises(ConfigError, match="--edge-dropout must be less than 1"):
        RGCNOptions(edge_dropout=1.0)


def test_edge_dropout_only_in_training():
    encoder = _encoder(edge_dropout=0.5, dropout=0.0)
    encoder.eval()
    assert encoder.message_graph() is encoder.graph
    encoder.train()
    torch.manual_seed(0)
    dropped = encoder.message_graph()
    assert dropped is not encoder.graph
    assert dropped.num_pairs < encoder.graph.num_pairs
    no_drop = _encoder(edge_dropout=0.0).train()
    assert no_drop.message_graph() is no_drop.graph


def test_message_triples_replace_the_graph_in_that_pass_only():
    encoder = _encoder(edge_dropout=0.5).train()
    subset = _triples()[::3]
    # Dropout between layers is off in eval mode; the given triples still replace the graph.
    encoder.eval()
    out = encoder(subset)
    first = reference_rgcn_layer(encoder.layers[0], encoder.embeddings.weight, subset, R)
    expected = reference_rgcn_layer(encoder.layers[1], first.relu(), subset, R)
    assert torch.allclose(out, expected, atol=1e-5)
    # Entities the subset does not touch keep only their self-connection.
    untouched = sorted(set(range(E)) - set(subset[:, [0, 2]].flatten().tolist()))
    assert untouched
    layer_1, layer_2 = encoder.layers
    x = encoder.embeddings.weight[untouched]
    alone = (x @ layer_1.self_weight + layer_1.bias).relu() @ layer_2.self_weight + layer_2.bias
    assert torch.allclose(out[untouched], alone, atol=1e-6)
    # No edge dropout on top of the given triples, and the full graph is back without them.
    encoder.train()
    assert encoder.message_graph(subset).num_pairs == RelationalGraph(subset, E, R).num_pairs
    encoder.eval()
    assert torch.allclose(encoder(), _encoder().eval()(), atol=1e-6)


def test_no_message_triples_leaves_the_self_connection():
    encoder = _encoder(layers=1).eval()
    layer = encoder.layers[0]
    expected = encoder.embeddings.weight @ layer.self_weight + layer.bias
    assert torch.allclose(encoder(_triples()[:0]), expected, atol=1e-6)


def test_model_to_cpu_and_double_keeps_working():
    encoder = _encoder().eval()
    model = KGModel(encoder, DECODERS.get("distmult")(R, 6)).eval()
    before = model.encoder()
    model.to("cpu")
    assert torch.equal(model.encoder(), before)
    # Converting the dtype must also convert the sparse matrices' values, and only them.
    model.double()
    graph = model.encoder.graph
    for name in ("mean", "mean_t", "gather", "gather_t"):
        matrix = graph.matrix(name)
        assert matrix.dtype == torch.float64 and matrix.crow_indices().dtype == torch.int64
    out = model.encoder()
    assert out.dtype == torch.float64
    assert torch.allclose(out.float(), before, atol=1e-5)
    scores = model.score_hrt(_triples()[:4])
    assert scores.dtype == torch.float64 and scores.shape == (4,)


def test_state_dict_round_trip_excludes_sparse_matrices():
    encoder = _encoder().eval()
    state = encoder.state_dict()
    assert all(not value.is_sparse and value.layout == torch.strided for value in state.values())
    assert not any(key.startswith("graph.") for key in state)
    other = _encoder(seed=9).eval()
    assert not torch.allclose(other(), encoder())
    other.load_state_dict(state)
    assert torch.equal(other(), encoder())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("edge_dropout", [0.0, 0.5])
def test_encoder_on_cuda_matches_cpu(edge_dropout):
    encoder = _encoder(edge_dropout=edge_dropout)
    expected = encoder.eval()()
    encoder.to("cuda")
    assert torch.allclose(encoder().cpu(), expected, atol=1e-5)
    encoder.train()
    out = encoder()  # training mode: dropout, and edge dropout rebuilds the graph on the GPU
    out.sum().backward()
    assert out.device.type == "cuda"
    assert encoder.embeddings.weight.grad is not None


def test_layer_reset_parameters_redraws_them_as_a_new_layer_would():
    torch.manual_seed(4)
    fresh = RGCNLayer(5, 3, 2 * R, 2)
    layer = RGCNLayer(5, 3, 2 * R, 2)
    with torch.no_grad():
        layer.bias.fill_(1.0)
    torch.manual_seed(4)
    layer.reset_parameters()
    for name, value in fresh.state_dict().items():
        assert torch.equal(layer.state_dict()[name], value), name
    assert torch.equal(layer.bias, torch.zeros(3))


def test_layer_and_graph_describe_their_sizes():
    graph = RelationalGraph(_triples(), E, R)
    assert (
        repr(RGCNLayer(5, 3, 2 * R, 2)) == "RGCNLayer(in_dim=5, out_dim=3, edge_types=8, bases=2)"
    )
    assert (
        repr(graph) == f"RelationalGraph(entities={E}, edge_types={2 * R}, pairs={graph.num_pairs})"
    )


@pytest.mark.parametrize("subsets", [False, True])
def test_graph_matrices_are_built_from_buffers_that_move_with_the_module(subsets):
    graph = RelationalGraph(_triples(), E, R, subsets=subsets)
    parts = {name for name, _ in graph.named_buffers()}
    matrices = {
        f"{matrix}_{part}"
        for matrix in ("mean", "mean_t", "gather", "gather_t")
        for part in ("row_starts", "columns", "values")
    }
    edges = {f"edges_{name}" for name in SortedEdges._fields} if subsets else set()
    assert parts == matrices | {"pair_types"} | edges
    dense = graph.matrix("mean").to_dense()
    assert torch.equal(graph.matrix("mean_t").to_dense(), dense.T)
    # Each row of the mean matrix averages its pair's sources.
    assert torch.allclose(dense.sum(1), torch.ones(graph.num_pairs))
    assert graph.state_dict() == {}


MATRICES = ("mean", "mean_t", "gather", "gather_t")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_subset_is_the_graph_built_from_those_triples(seed):
    triples = _triples(seed)
    full = RelationalGraph(triples, E, R, subsets=True)
    generator = torch.Generator().manual_seed(seed)
    for kept in (
        torch.rand(len(triples), generator=generator) >= 0.4,
        torch.ones(len(triples), dtype=torch.bool),
        torch.zeros(len(triples), dtype=torch.bool),
    ):
        subset = full.subset(kept)
        built = RelationalGraph(triples[kept], E, R)
        assert subset.num_pairs == built.num_pairs
        assert subset.type_sizes == built.type_sizes
        assert torch.equal(subset.pair_types, built.pair_types)
        for name in MATRICES:
            for part in ("row_starts", "columns", "values"):
                assert torch.equal(
                    getattr(subset, f"{name}_{part}"), getattr(built, f"{name}_{part}")
                ), (name, part)
        assert not hasattr(subset, "edges_sources")


def test_only_a_graph_that_keeps_its_edges_makes_subsets():
    graph = RelationalGraph(_triples(), E, R)
    with pytest.raises(ValueError, match="subsets=True"):
        graph.subset(torch.ones(40, dtype=torch.bool))


def test_blocks_must_divide_the_widths():
    with pytest.raises(ConfigError, match="--blocks must divide"):
        RGCNLayer(6, 4, 2 * R, 0, 4)
    layer = RGCNLayer(6, 4, 2 * R, 0, 2)
    assert repr(layer) == "RGCNLayer(in_dim=6, out_dim=4, edge_types=8, blocks=2)"
    assert layer.relation_weights().shape == (2 * R, 2, 3, 2)


def test_inference_is_the_eval_forward_in_any_mode_and_leaves_the_mode():
    model = KGModel(_encoder(dropout=0.5, edge_dropout=0.5), DECODERS.get("distmult")(R, 6))
    model.eval()
    expected = model()
    model.train()
    entities, relations = model.inference()
    assert model.training
    assert torch.equal(entities, expected[0]) and torch.equal(relations, expected[1])
    assert not entities.requires_grad and not relations.requires_grad
