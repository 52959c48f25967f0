"""The PyKEEN training callback that hands a bridged sampler its model and keeps its state
beside PyKEEN's checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pykeen.sampling import negative_sampler_resolver
from pykeen.training.callbacks import TrainingCallback

from dans.errors import DansError
from dans.files import write_atomic
from dans.pykeen.sampler import DansNegativeSampler
from dans.sealed import seal, unseal

# The sealed kind of the sampler's state kept beside PyKEEN's checkpoint.
SAMPLER_STATE_KIND = "dans-pykeen-sampler"


class SamplerCallback(TrainingCallback):
    """Gives the bridged sampler of a PyKEEN training loop its model, and keeps its state with
    the loop's checkpoints: given ``checkpoint``, PyKEEN's checkpoint file (the one of
    ``training_kwargs=dict(checkpoint_name=...)``), it writes the sampler's state beside it as
    ``<checkpoint>.dans-sampler.pt`` after every epoch and reads it back when PyKEEN resumes from
    that checkpoint. A state of another epoch than PyKEEN's checkpoint is refused, so have PyKEEN
    save every epoch (``checkpoint_frequency=0``)."""

    def __init__(self, checkpoint: str | Path | None = None) -> None:
        super().__init__()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.joined: set[int] = set()
        # The sampler that sampled last: PyKEEN may make one for a trial batch before the one
        # that trains, and the one that trains samples last in every epoch.
        self.active: DansNegativeSampler | None = None
        self._saved: dict[str, Any] | None = None

    @property
    def state_path(self) -> Path | None:
        if self.checkpoint is None:
            return None
        return self.checkpoint.with_name(self.checkpoint.name + ".dans-sampler.pt")

    def register_training_loop(self, training_loop: Any) -> None:
        """Called by PyKEEN as training starts (after a checkpoint was loaded, if any), before
        it makes its negative samplers: a bridged sampler the loop makes from here on is made
        with this callback (a sampler given already made joins it now), and takes back the
        saved state."""
        super().register_training_loop(training_loop)
        _join(training_loop, self)
        self.joined, self.active, self._saved = set(), None, None
        path, epoch = self.state_path, training_loop._epoch
        if path is not None and path.exists() and epoch > 0:
            saved = unseal(path, SAMPLER_STATE_KIND)
            if saved["epoch"] != epoch:
                raise DansError(
                    f"{path}: the sampler's state of epoch {saved['epoch']}, but PyKEEN resumes "
                    f"from epoch {epoch}; save PyKEEN's checkpoints every epoch "
                    "(checkpoint_frequency=0)"
                )
            self._saved = saved["sampler"]

    def sampling(self, sampler: DansNegativeSampler) -> None:
        """Called by a sampler before each batch: at its first, it takes the saved state."""
        if id(sampler) not in self.joined:
            self.joined.add(id(sampler))
            if self._saved is not None:
                sampler.load_training_state(self._saved)
        self.active = sampler

    def post_epoch(self, epoch: int, epoch_loss: float, **kwargs: Any) -> None:
        path = self.state_path
        if path is None or self.active is None:
            return
        state = {"epoch": epoch, "sampler": self.active.training_state()}
        write_atomic(path, seal(state, SAMPLER_STATE_KIND))

    def post_train(self, losses: list[float], **kwargs: Any) -> None:
        """The loop's samplers are made without this callback again, should the loop train
        once more without it."""
        loop_kwargs = getattr(self.training_loop, "negative_sampler_kwargs", None)
        if loop_kwargs and loop_kwargs.get("sampler_callback") is self:
            del loop_kwargs["sampler_callback"]


def _join(training_loop: Any, callback: SamplerCallback) -> None:
    """Have the negative sampler of ``training_loop`` (an sLCWA loop's: a name, a class or one
    already made) made with ``callback``, or give it ``callback`` if it is made already."""
    chosen = getattr(training_loop, "negative_sampler", None)
    if isinstance(chosen, DansNegativeSampler):
        chosen.sampler_callback = callback
        return
    if isinstance(chosen, str | type):
        try:
            kind = negative_sampler_resolver.lookup(chosen)
        except (KeyError, ValueError):  # not a sampler PyKEEN knows: it refuses it itself
            return
        if issubclass(kind, DansNegativeSampler):
            kwargs = dict(getattr(training_loop, "negative_sampler_kwargs", None) or {})
            training_loop.negative_sampler_kwargs = {**kwargs, "sampler_callback": callback}
