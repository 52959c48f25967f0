"""dans: knowledge-graph embeddings with pluggable negative sampling.

The Python API in one place::

    import dans
    run = dans.train(dans.TrainConfig(epochs=50), out="runs/u1")
    run = dans.train(dans.recipe("wn18rr"), out="runs/wn")  # tuned settings for a large graph
    run = dans.resume("runs/u1")              # finish a killed run from its last saved state
    run = dans.load_run("runs/u1")            # run.model, run.kg, run.config, run.sampler
    result = dans.evaluate(run.model, run.kg, split="test")  # result.mrr, result.to_dict()
    best = dans.predict(run, [dans.Query("cell", "part_of", "?")], k=5)  # best[0].entities
"""

from dans.config import TrainConfig
from dans.data import KnowledgeGraph, load_dataset
from dans.errors import DansError
from dans.evaluation import Evaluation, RankMetrics, evaluate
from dans.models import DECODERS, ENCODERS, KGModel
from dans.pipeline import load_run, resume, train
from dans.prediction import Prediction, Query, predict
from dans.recipes import recipe
from dans.rundir import FinishedRun, Run, RunMetrics
from dans.samplers import SAMPLERS, DANSSampler, Negatives, NegativeSampler, StepContext
from dans.training import TrainingCallback
from dans.version import __version__

__all__ = [
    "DECODERS",
    "ENCODERS",
    "SAMPLERS",
    "DANSSampler",
    "DansError",
    "Evaluation",
    "FinishedRun",
    "KGModel",
    "KnowledgeGraph",
    "NegativeSampler",
    "Negatives",
    "Prediction",
    "Query",
    "RankMetrics",
    "Run",
    "RunMetrics",
    "StepContext",
    "TrainConfig",
    "TrainingCallback",
    "__version__",
    "evaluate",
    "load_dataset",
    "load_run",
    "predict",
    "recipe",
    "resume",
    "train",
]
