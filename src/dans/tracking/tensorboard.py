"""``--tracker tensorboard``: scalars per epoch and the run's settings, as TensorBoard events."""

from __future__ import annotations

from typing import Any

from dans.errors import DansError
from dans.tracking.base import Tracker, TrackerSpec


class TensorBoardTracker(Tracker):
    """Writes the events of ``tensorboard/`` (``tensorboard/<run>/`` for one run of many): each
    metric a scalar against the epoch, the settings as text and, once the run finishes, as
    hyper-parameters beside its final metrics."""

    name = "tensorboard"

    def __init__(self, spec: TrackerSpec, run: str) -> None:
        super().__init__(spec, run)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise DansError(
                "--tracker tensorboard needs TensorBoard: pip install 'dans-kge[tensorboard]'"
            ) from None
        self._writer = SummaryWriter(str(self.place("tensorboard")))
        self._params: dict[str, Any] = {}
        self._last: dict[str, float] = {}

    def log_params(self, params: dict[str, Any]) -> None:
        self._params = params
        lines = "\n".join(f"    {key} = {value!r}" for key, value in params.items())
        self._writer.add_text("config", lines)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)
        self._last |= metrics
        self._writer.flush()

    def close(self, finished: bool) -> None:
        if finished:
            final = {f"hparam/{key}": value for key, value in self._last.items() if "test_" in key}
            self._writer.add_hparams(self._params, final, run_name=".")
        self._writer.close()
