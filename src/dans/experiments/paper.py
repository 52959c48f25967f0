"""What the paper fixes for its experiments, in one place: the samplers and decoders of its
Tables 2 and 3 in its order, the baselines its tests compare against, the decoders' titles, the
variants of its ablation (Fig. 2(a)), the names of the settings it sweeps (Fig. 2(b) and (c)),
and its published figures. `dans compare`, `dans ablate`, `dans sweep`, the table renderers and
the documentation take them from here."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

# The samplers of the paper's Tables 2 and 3, in its order; DANS as the paper has it, then with
# the GAN schedule of the authors' code.
SAMPLERS = (
    "uniform",
    "popularity",
    "self-adv",
    "mcns",
    "nscaching",
    "kbgan",
    "sans",
    "cake",
    "smile",
    "dans",
    "dans-authors",
)
DECODERS = ("distmult", "complex", "rotate")
DECODER_TITLES = {"distmult": "DistMult", "complex": "ComplEx", "rotate": "RotatE"}
# The samplers every other one is tested against, where a table has them.
BASELINES = ("uniform", "nscaching")
# The ablation's variants: its three ablations do without FiLM.
ABLATIONS: dict[str, dict[str, Any]] = {
    "G_E": {"dans_pathways": "entity", "dans_film": False},
    "G_R": {"dans_pathways": "relation", "dans_film": False},
    "G_ER": {"dans_pathways": "both", "dans_film": False},
    "DANS": {"dans_pathways": "both", "dans_film": True},
}
# The paper's names for the two settings it sweeps.
SWEEP_ALIASES = {"n_negatives": "negatives", "lambda": "dans_film_lambda"}

PUBLISHED_FILE = Path(__file__).with_name("paper_values.json")


@functools.cache
def published() -> dict[str, Any]:
    """The paper's Tables 2 and 3: ``values[dataset][decoder][sampler][metric]`` is its
    ``[mean, std]`` over five seeds (``mrr``, ``hits@1``, ``ndcg@5``), ``rows`` the paper's
    name of each sampler's row."""
    return json.loads(PUBLISHED_FILE.read_text())
