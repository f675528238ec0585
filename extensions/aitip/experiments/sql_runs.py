"""Start a job's MLflow run in one SQL transaction: the rows ``SqlAlchemyStore.create_run`` and
``log_batch`` would write, without their ORM sessions.

Why: a job's run is created while the job starts. Through MLflow's client it costs two ORM transactions
(mostly Python), and in the platform service that thread competes for the GIL with the event loop that is
starting the job's kernel: the job's first cells came back later for it. Here it is one Core insert per
table, a fraction of that. The tables are checked against MLflow's own models and the database
at start; on any difference the tracker uses MLflow's client instead.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from .mlflow_sql import column_mismatch, unsupported_store

log = logging.getLogger("aitip.experiments.sql_runs")

RUN_COLUMNS = frozenset({"run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id", "status",
                         "start_time", "end_time", "deleted_time", "source_version", "lifecycle_stage", "artifact_uri",
                         "experiment_id"})
KEY_VALUE_COLUMNS = frozenset({"key", "value", "run_uuid"})


class SqlRunStarter:
    """Creates active, running runs with their tags and parameters, as MLflow's SQL store would."""

    def __init__(self, store: Any) -> None:
        from mlflow.store.tracking.dbmodels.models import (
            SqlExperiment,
            SqlParam,
            SqlRun,
            SqlTag,
        )
        from sqlalchemy import bindparam, select

        self.engine = store.engine
        self._is_sqlite = self.engine.dialect.name == "sqlite"
        self._runs, self._tags, self._params = SqlRun.__table__, SqlTag.__table__, SqlParam.__table__
        experiments = SqlExperiment.__table__
        self._experiment_stage = select(experiments.c.lifecycle_stage).where(
            experiments.c.experiment_id == bindparam("experiment_id"))

    @classmethod
    def for_store(cls, store: Any) -> SqlRunStarter | None:
        """The starter for ``store``, or None (the reason logged) where MLflow's client must do."""
        try:
            reason = cls._mismatch(store)
            if reason is None:
                return cls(store)
        except Exception as error:  # noqa: BLE001 - the client path is always correct
            reason = f"the database could not be inspected: {type(error).__name__}: {error}"
        log.info("runs in %s are created through MLflow's client: %s", getattr(store, "db_uri", store), reason)
        return None

    @staticmethod
    def _mismatch(store: Any) -> str | None:
        import sqlalchemy
        from mlflow.store.tracking.dbmodels.models import SqlParam, SqlRun, SqlTag

        reason = unsupported_store(store)
        if reason is not None:
            return reason
        inspector = sqlalchemy.inspect(store.engine)
        for model, expected in ((SqlRun, RUN_COLUMNS), (SqlTag, KEY_VALUE_COLUMNS), (SqlParam, KEY_VALUE_COLUMNS)):
            mismatch = column_mismatch(inspector, model, expected)
            if mismatch is not None:
                return mismatch
        return None

    def start(self, experiment_id: str, artifact_location: str, user_id: str, tags: dict[str, str],
              params: dict[str, str], start_time_ms: int) -> str:
        """A new run in ``experiment_id`` (which must be active), in one transaction; its id."""
        from mlflow.entities import LifecycleStage, Param, RunStatus, RunTag, SourceType
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
        from mlflow.utils.uri import append_to_uri_path
        from mlflow.utils.validation import _validate_batch_log_data

        _, checked_params, checked_tags = _validate_batch_log_data(
            [], [Param(key, value) for key, value in params.items()],
            [RunTag(key, value) for key, value in tags.items()])
        run_name = tags.get(MLFLOW_RUN_NAME)
        if not run_name:
            raise MlflowException("a job's run is always named (tag mlflow.runName)", INVALID_PARAMETER_VALUE)
        run_id = uuid.uuid4().hex
        run_row = {
            "run_uuid": run_id, "name": run_name, "source_type": SourceType.to_string(SourceType.UNKNOWN),
            "source_name": "", "entry_point_name": "", "user_id": user_id,
            "status": RunStatus.to_string(RunStatus.RUNNING), "start_time": start_time_ms, "end_time": None,
            "deleted_time": None, "source_version": "", "lifecycle_stage": LifecycleStage.ACTIVE,
            "artifact_uri": append_to_uri_path(artifact_location, run_id, "artifacts"),
            "experiment_id": int(experiment_id),
        }
        with self.engine.begin() as connection:
            if self._is_sqlite:  # as MLflow's sessions do
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.exec_driver_sql("PRAGMA busy_timeout = 20000")
            stage = connection.execute(self._experiment_stage, {"experiment_id": int(experiment_id)}).scalars().all()
            if stage != [LifecycleStage.ACTIVE]:
                raise MlflowException(f"experiment {experiment_id} is not active ({stage[0] if stage else 'not found'})",
                                      INVALID_PARAMETER_VALUE)
            connection.execute(self._runs.insert(), run_row)
            connection.execute(self._tags.insert(),
                               [{"key": t.key, "value": t.value, "run_uuid": run_id} for t in checked_tags])
            if checked_params:
                connection.execute(self._params.insert(),
                                   [{"key": p.key, "value": p.value, "run_uuid": run_id} for p in checked_params])
        return run_id
