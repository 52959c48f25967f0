"""DANS's networks: FiLM-adapted generator pathways (Eqs. 4-8) and the two-way discriminator (Eqs.
9-10).

Widths the paper leaves open follow the authors' public code: FiLM MLPs ``d -> 100 -> d``,
generator layers Linear -> FiLM -> BatchNorm -> LeakyReLU(0.2) with a Linear -> tanh output, and a
discriminator trunk ``d -> 50 -> 32``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import LongTensor, Tensor, nn

FILM_HIDDEN = 100
DISCRIMINATOR_WIDTHS = (50, 32)
LEAKY_SLOPE = 0.2


class FiLM(nn.Module):
    """Per-example scale ``alpha`` and shift ``beta`` for each hidden layer of a pathway (Eqs. 6-8).

    Each layer and each factor has its own MLP ``cond_dim -> hidden -> width``, as Eqs. 7 and 8
    write them; the first layers of all of them share one matrix product and the second layers
    one batched product. The MLPs output ``alpha - 1`` and ``beta``, so an untrained FiLM is near
    the identity and the regulariser of Eq. 13 is the squared output.
    """

    def __init__(self, cond_dim: int, width: int, layers: int, hidden: int = FILM_HIDDEN) -> None:
        super().__init__()
        self.layers = layers
        self.hidden = hidden
        self.first = nn.Linear(cond_dim, 2 * layers * hidden)
        bound = 1 / math.sqrt(hidden)  # nn.Linear's default initialisation
        self.second_weight = nn.Parameter(torch.empty(2 * layers, hidden, width))
        self.second_bias = nn.Parameter(torch.empty(2 * layers, 1, width))
        nn.init.uniform_(self.second_weight, -bound, bound)
        nn.init.uniform_(self.second_bias, -bound, bound)

    def forward(self, conditions: Tensor) -> Tensor:
        """shape: (N, cond_dim) -> (2M, N, width): rows ``2m`` hold ``alpha_m - 1``, ``2m + 1``
        hold ``beta_m``."""
        x = F.leaky_relu(self.first(conditions), LEAKY_SLOPE)
        x = x.view(len(conditions), 2 * self.layers, self.hidden).transpose(0, 1)
        return torch.baddbmm(self.second_bias, x, self.second_weight)


class Pathway(nn.Module):
    """One generator pathway, ``G_E`` or ``G_R``: fake entity embeddings from a conditioning vector.

    The conditioning vector is both the mean of the noise (``e_h`` in Eq. 4, ``e_h * e_r`` in
    Eq. 5) and the input of the FiLM networks (Eqs. 7-8), so a pathway is a function of it alone.
    """

    def __init__(self, dim: int, layers: int, film: bool) -> None:
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(layers))
        self.output = nn.Linear(dim, dim)
        self.film = FiLM(dim, dim, layers) if film else None

    def modulation(self, conditions: Tensor) -> Tensor | None:
        """FiLM factors for each conditioning row, shape (2M, N_c, d), or None without FiLM."""
        return None if self.film is None else self.film(conditions)

    def forward(
        self,
        conditions: Tensor,
        index: LongTensor | None,
        sigma: float,
        generator: torch.Generator,
        modulation: Tensor | None = None,
        output_scale: Tensor | float = 1.0,
    ) -> Tensor:
        """Fakes for conditioning rows ``conditions[index]``: shapes (N_c, d), (N,) -> (N, d);
        with ``index`` None, one fake per conditioning row, (N_c, d).

        ``modulation`` is :meth:`modulation` of ``conditions``, computed once per conditioning
        row and shared by the fakes drawn from it; it is computed here when not given. The
        output is ``output_scale * tanh(...)``.
        """
        if modulation is None:
            modulation = self.modulation(conditions)
        means = conditions if index is None else conditions.index_select(0, index)
        noise = torch.randn(
            means.shape, generator=generator, device=generator.device, dtype=means.dtype
        )
        x = means + sigma * noise
        factors: tuple[Tensor, ...] = ()
        if modulation is not None and index is None:
            factors = modulation.unbind(0)
        elif modulation is not None:
            # A row gather of (U, 2M * d), then unbind: slicing and gathering along the middle
            # axis instead would cost a zero-filled full-size buffer per factor in backward.
            rows = modulation.permute(1, 0, 2).reshape(len(conditions), -1)
            factors = rows.index_select(0, index).view(len(index), len(modulation), -1).unbind(1)
        for m, (linear, norm) in enumerate(zip(self.hidden, self.norms, strict=True)):
            x = linear(x)
            if factors:
                x = torch.addcmul(factors[2 * m + 1], x, 1 + factors[2 * m])
            x = F.leaky_relu(_batch_norm(norm, x), LEAKY_SLOPE)
        return output_scale * torch.tanh(self.output(x))


def film_penalty(modulation: Tensor) -> Tensor:
    """``sum_m (||alpha_m - 1||^2 + ||beta_m||^2)`` averaged over conditioning rows (Eq. 13)."""
    return modulation.pow(2).sum((0, 2)).mean()


def _batch_norm(norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
    # Batch statistics need two rows; a lone row is normalised with the running statistics.
    if norm.training and len(x) < 2:
        return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias)
    return norm(x)


class Discriminator(nn.Module):
    """A shared trunk, then ``D_adv`` (real vs fake entity) and ``D_aux`` (``G_E`` vs ``G_R``
    fake), both a single linear layer (Eqs. 9-10)."""

    def __init__(self, dim: int, widths: tuple[int, ...] = DISCRIMINATOR_WIDTHS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width_in, width_out in zip((dim, *widths), widths, strict=False):
            layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(LEAKY_SLOPE)]
        self.trunk = nn.Sequential(*layers)
        self.adversarial = nn.Linear(widths[-1], 1)
        self.auxiliary = nn.Linear(widths[-1], 1)

    def forward(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """shape: (..., d) -> logits (...) of "real" and of "made by ``G_E``"."""
        shared = self.trunk(embeddings)
        return self.adversarial(shared).squeeze(-1), self.auxiliary(shared).squeeze(-1)
