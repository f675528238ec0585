"""The platform's operations as the dashboards use them: each call is a row of the operation table, sent by
the SDK's generated method (:mod:`aitip.sdk_operations`) with the viewer's own token, so the platform checks
the viewer's roles and the dashboards hold no credentials of their own, nor build a path or body by hand.
Answers come back as plain JSON (what REST answers). Operations this platform does not run (no resource
monitor) answer ``None`` instead of failing the page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from aitip.client import AitipAPIError, Client
from aitip.jobs.models import JobEvent, JobState
from aitip.operations.table import operation
from aitip.sdk_operations import call

# Calls made side by side; tasks here never wait on other tasks, so the pool cannot deadlock.
_LEAF_CALLS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboards-api")

JOB_STATES = tuple(state.value for state in JobState)


class DashboardAPI:
    """Methods named as the pages speak, each one operation of the table (``op``) with its arguments."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def close(self) -> None:
        self.client.close()

    def op(self, name: str, **arguments: Any) -> Any:
        """Run operation ``name`` (``"jobs.list"``...) with its inputs by field name; ``None`` values are left
        to the operation's defaults. The answer as JSON."""
        answer = call(self.client, operation(name), {k: v for k, v in arguments.items() if v is not None})
        return answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer

    def _optional(self, name: str, **arguments: Any) -> Any:
        """An operation this platform may not run: ``None`` on 404, 501, or 503 (not running)."""
        try:
            return self.op(name, **arguments)
        except AitipAPIError as error:
            if error.status in (404, 501) or (error.status == 503 and error.code != "unreachable"):
                return None
            raise

    # ----- identity -----

    def me(self) -> dict[str, Any]:
        return self.op("platform.me")  # type: ignore[no-any-return]

    # ----- jobs -----

    def jobs(self, *, project: str | None = None, state: str | None = None, owner: str | None = None,
             limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self.op("jobs.list", project=project or None, state=state or None,  # type: ignore[no-any-return]
                       owner=owner or None, limit=limit, offset=offset)

    def job_counts(self, project: str | None = None) -> dict[str, int]:
        """Exact count per state: one ``limit=1`` call per state, reading ``total``, all at once."""
        totals = _LEAF_CALLS.map(lambda state: int(self.jobs(project=project, state=state, limit=1)["total"]),
                                 JOB_STATES)
        return dict(zip(JOB_STATES, totals))

    def job(self, job_id: int) -> dict[str, Any]:
        return self.op("jobs.get", job=int(job_id))  # type: ignore[no-any-return]

    def job_events(self, job_id: int, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        return self.op("jobs.events", job=int(job_id), after=after, limit=limit)  # type: ignore[no-any-return]

    def follow_job(self, job_id: int, after: int = 0) -> Iterator[JobEvent]:
        """``jobs.events`` as its Server-Sent Events stream (the SDK's reconnecting reader)."""
        return self.client.follow_job(job_id, after=after)

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        return self.op("jobs.cancel", job=int(job_id))  # type: ignore[no-any-return]

    def retry_job(self, job_id: int) -> dict[str, Any]:
        return self.op("jobs.retry", job=int(job_id))  # type: ignore[no-any-return]

    def rerun_job(self, job_id: int, *, parameters: dict[str, Any],
                  inputs: list[dict[str, Any]] | None) -> dict[str, Any]:
        """Job ``job_id``'s notebook as the viewer's new job, with these parameters changed and, unless None,
        these dataset versions read instead."""
        return self.op("jobs.rerun", job=int(job_id), parameters=parameters,  # type: ignore[no-any-return]
                       inputs=inputs)

    def executed_notebook(self, job_id: int) -> bytes:
        return json.dumps(self.op("jobs.notebook", job=int(job_id)), indent=1).encode()

    # ----- experiments -----

    def experiments(self, project: str) -> list[dict[str, Any]]:
        return self.op("experiments.list", project=project)["experiments"]  # type: ignore[no-any-return]

    def runs(self, project: str, *, experiment_id: str | None = None, filter: str | None = None,
             order_by: str | None = None, max_results: int = 200, page_token: str | None = None) -> dict[str, Any]:
        return self.op("runs.list", project=project, experiment_id=experiment_id or None,  # type: ignore[no-any-return]
                       filter=filter or None, order_by=order_by or None, max_results=max_results,
                       page_token=page_token or None)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.op("runs.get", run=run_id)  # type: ignore[no-any-return]

    def metric_history(self, run_id: str, key: str, max_points: int = 1000) -> dict[str, Any]:
        return self.op("runs.metric_history", run=run_id, key=key, max_points=max_points)  # type: ignore[no-any-return]

    def compare(self, project: str, run_ids: list[str], max_points: int = 500,
                keys: list[str] | None = None) -> dict[str, Any]:
        """``keys``: the metrics whose curves to send (default: every metric the runs logged, up to 50)."""
        return self.op("runs.compare", project=project, run=list(run_ids),  # type: ignore[no-any-return]
                       key=list(keys) if keys else None, max_points=max_points)

    def models(self, project: str) -> list[dict[str, Any]]:
        return self.op("models.list", project=project)["models"]  # type: ignore[no-any-return]

    # ----- datasets -----

    def datasets(self, project: str) -> list[dict[str, Any]]:
        return self.op("datasets.list", project=project)["datasets"]  # type: ignore[no-any-return]

    def dataset_versions(self, project: str, name: str) -> list[dict[str, Any]]:
        return self.op("datasets.versions", project=project, dataset=name)["versions"]  # type: ignore[no-any-return]

    def dataset_diff(self, project: str, name: str, before: int, after: int) -> dict[str, Any]:
        return self.op("datasets.diff", project=project, dataset=name,  # type: ignore[no-any-return]
                       from_version=before, to_version=after)

    def lineage(self, node: str, depth: int = 4) -> dict[str, Any]:
        return self.op("lineage.get", node=node, depth=depth)  # type: ignore[no-any-return]

    def dataset(self, project: str, name: str) -> dict[str, Any]:
        return self.op("datasets.get", project=project, dataset=name)  # type: ignore[no-any-return]

    def update_dataset(self, project: str, name: str, **settings: Any) -> dict[str, Any]:
        """``datasets.update``: ``sensitive_columns``, ``quality_rules`` or ``description`` (maintainers)."""
        return self.op("datasets.update", project=project, dataset=name, **settings)  # type: ignore[no-any-return]

    def dataset_preview(self, project: str, name: str, version: int, limit: int = 20) -> dict[str, Any]:
        return self.op("datasets.preview", project=project, dataset=name,  # type: ignore[no-any-return]
                       version=int(version), limit=limit)

    def dataset_thumbnails(self, project: str, name: str, version: int, per_class: int = 4) -> dict[str, Any]:
        return self.op("datasets.thumbnails", project=project, dataset=name,  # type: ignore[no-any-return]
                       version=int(version), per_class=per_class)

    def annotation_tasks(self, project: str) -> list[dict[str, Any]]:
        return self.op("annotations.list", project=project)["tasks"]  # type: ignore[no-any-return]

    def annotation_task(self, project: str, task: int) -> dict[str, Any]:
        return self.op("annotations.get", project=project, task=int(task))  # type: ignore[no-any-return]

    def annotation_queue(self, project: str, task: int, *, annotator: str | None = None, everything: bool = False,
                         item: int | None = None) -> list[dict[str, Any]]:
        """The viewer's items (reviewers: ``annotator``'s); ``everything``: accepted ones too; ``item``: that one,
        with its picture."""
        return self.op("annotations.queue", project=project, task=int(task),  # type: ignore[no-any-return]
                       annotator=annotator, all=everything or None, item=item)["assignments"]

    def label_item(self, project: str, task: int, item: int, label: str) -> dict[str, Any]:
        return self.op("annotations.label", project=project, task=int(task),  # type: ignore[no-any-return]
                       item=int(item), label=label)

    def review_label(self, project: str, task: int, assignment: int, decision: str) -> dict[str, Any]:
        return self.op("annotations.review", project=project, task=int(task),  # type: ignore[no-any-return]
                       assignment=int(assignment), decision=decision)

    def export_labels(self, project: str, task: int, dataset: str | None = None, message: str = "") -> dict[str, Any]:
        return self.op("annotations.export", project=project, task=int(task),  # type: ignore[no-any-return]
                       dataset=dataset or None, message=message or None)

    # ----- resources (None where the resource monitor is not deployed) -----

    def resources_now(self) -> dict[str, Any] | None:
        """The newest sample: ``host``, ``gpu_available``/``no_gpu_reason`` and ``devices`` with their
        processes and jobs (other projects' jobs hidden by the platform)."""
        return self._optional("resources.now")  # type: ignore[no-any-return]

    def resources_history(self, seconds: int = 3600, max_points: int = 500) -> dict[str, Any] | None:
        """Column-wise series of the last ``seconds``: ``host`` and each of ``devices`` hold ``t`` (epoch
        seconds) and one list per measurement."""
        return self._optional("resources.history", since=time.time() - seconds,  # type: ignore[no-any-return]
                              max_points=max_points)

    def resources_usage(self, by: str = "user") -> dict[str, Any] | None:
        """GPU-hours by ``user`` or ``project``, over the jobs of the viewer's projects."""
        return self._optional("resources.usage", by=by)  # type: ignore[no-any-return]
