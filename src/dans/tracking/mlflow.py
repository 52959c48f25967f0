"""``--tracker mlflow``: each run an MLflow run, its settings as parameters and its metrics by
epoch, in a local SQLite store unless a tracking URI names another."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

from dans.errors import DansError
from dans.redaction import without_secrets
from dans.sealed import first_line
from dans.tracking.base import Tracker, TrackerSpec

STORE_FILE = "mlflow.db"
# What MLflow keeps of a parameter's value.
PARAM_LIMIT = 6000


class MlflowTracker(Tracker):
    """One MLflow run named after the run, in the experiment of the spec (created when missing).
    A resumed run goes on in its unfinished MLflow run of the same name rather than opening a
    second one. A failure of the store (a server gone, a locked database) stops the command in
    one line; the run directory keeps what was trained, for ``--resume``."""

    name = "mlflow"

    def __init__(self, spec: TrackerSpec, run: str) -> None:
        super().__init__(spec, run)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise DansError(
                "--tracker mlflow needs MLflow: pip install 'dans-kge[mlflow]'"
            ) from None
        # MLflow reports creating its tables at INFO level, on the root handler.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.uri = spec.mlflow_uri or f"sqlite:///{(spec.folder / STORE_FILE).resolve()}"
        with self._reported(), warnings.catch_warnings():
            # Its SQL store warns of SQLAlchemy features it uses: nothing a user can act on.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._client = MlflowClient(self.uri)
            self._run_id = self._run(self._experiment())

    @contextlib.contextmanager
    def _reported(self) -> Iterator[None]:
        """MLflow's errors as one line naming the store."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            message = f"--tracker mlflow ({self.uri}): {first_line(exc)}"
            raise DansError(without_secrets(message, self.uri)) from None

    def _experiment(self) -> str:
        """The id of the spec's experiment; of two processes creating it at once, one wins and
        the other finds it."""
        from mlflow.exceptions import MlflowException

        found = self._client.get_experiment_by_name(self.spec.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(self.spec.experiment)
        except MlflowException:
            found = self._client.get_experiment_by_name(self.spec.experiment)
            if found is None:
                raise
            return found.experiment_id

    def _run(self, experiment: str) -> str:
        """The id of the unfinished MLflow run of this run's name, or of a new one."""
        named = f"tags.`mlflow.runName` = '{self.run}'"
        unfinished = self._client.search_runs(
            [experiment], f"{named} and attributes.status != 'FINISHED'", max_results=1
        )
        if unfinished:
            run_id = unfinished[0].info.run_id
            self._client.update_run(run_id, status="RUNNING")
            return run_id
        return self._client.create_run(experiment, run_name=self.run).info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        with self._reported():
            logged = self._client.get_run(self._run_id).data.params
            fresh = [
                Param(key, str(value)[:PARAM_LIMIT])
                for key, value in params.items()
                if key not in logged  # a resumed run's settings are there already
            ]
            self._client.log_batch(self._run_id, params=fresh)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(mlflow_name(key), value, now, step) for key, value in metrics.items()]
        with self._reported():
            self._client.log_batch(self._run_id, metrics=batch)

    def close(self, finished: bool) -> None:
        with self._reported():
            self._client.set_terminated(self._run_id, "FINISHED" if finished else "FAILED")


def mlflow_name(key: str) -> str:
    """A metric's name as MLflow allows it: ``hits@10`` becomes ``hits_at_10``."""
    return key.replace("@", "_at_")
