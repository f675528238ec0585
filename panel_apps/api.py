"""The platform REST API as the dashboards use it: one HTTP call per method, plain JSON back.

Every call goes through :class:`aitip.client.Client` with the viewer's own token, so the platform
checks the viewer's roles; the dashboards hold no credentials of their own. Routes that are not yet
deployed (a platform without the resource monitor) answer ``None`` instead of failing the page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from aitip.client import AitipAPIError, Client
from aitip.jobs.models import JobEvent

# Calls made side by side; tasks here never wait on other tasks, so the pool cannot deadlock.
_LEAF_CALLS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboards-api")

JOB_STATES = ("queued", "starting", "running", "succeeded", "failed", "cancelled", "timed_out")


def _segment(name: str) -> str:
    return quote(name, safe="")


class DashboardAPI:
    """Thin typed-by-convention wrapper: methods named after the routes they call."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, **params: Any) -> Any:
        query = {name: value for name, value in params.items() if value is not None and value != ""}
        return self.client.request("GET", path, params=query or None)

    def _optional(self, path: str, **params: Any) -> Any:
        """A route that may not exist on this platform: ``None`` on 404, 501, or 503 (not running)."""
        try:
            return self._get(path, **params)
        except AitipAPIError as error:
            if error.status in (404, 501) or (error.status == 503 and error.code != "unreachable"):
                return None
            raise

    # ----- identity and projects -----

    def me(self) -> dict[str, Any]:
        return self._get("me")  # type: ignore[no-any-return]

    # ----- jobs -----

    def jobs(self, *, project: str | None = None, state: str | None = None, owner: str | None = None,
             limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self._get("jobs", project=project, state=state, owner=owner, limit=limit,  # type: ignore[no-any-return]
                         offset=offset)

    def job_counts(self, project: str | None = None) -> dict[str, int]:
        """Exact count per state: one ``limit=1`` call per state, reading ``total``, all at once."""
        totals = _LEAF_CALLS.map(lambda state: int(self.jobs(project=project, state=state, limit=1)["total"]),
                                 JOB_STATES)
        return dict(zip(JOB_STATES, totals))

    def job(self, job_id: int) -> dict[str, Any]:
        return self._get(f"jobs/{int(job_id)}")  # type: ignore[no-any-return]

    def job_events(self, job_id: int, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        return self._get(f"jobs/{int(job_id)}/events", after=after, limit=limit)  # type: ignore[no-any-return]

    def follow_job(self, job_id: int, after: int = 0) -> Iterator[JobEvent]:
        return self.client.follow_job(job_id, after=after)

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        return self.client.request("POST", f"jobs/{int(job_id)}/cancel")  # type: ignore[no-any-return]

    def retry_job(self, job_id: int) -> dict[str, Any]:
        return self.client.request("POST", f"jobs/{int(job_id)}/retry")  # type: ignore[no-any-return]

    def executed_notebook(self, job_id: int) -> bytes:
        return json.dumps(self.client.executed_notebook(job_id), indent=1).encode()

    # ----- experiments -----

    def experiments(self, project: str) -> list[dict[str, Any]]:
        return self._get(f"projects/{_segment(project)}/experiments")["experiments"]  # type: ignore[no-any-return]

    def runs(self, project: str, *, experiment_id: str | None = None, filter: str | None = None,
             order_by: str | None = None, max_results: int = 200, page_token: str | None = None) -> dict[str, Any]:
        return self._get(f"projects/{_segment(project)}/runs", experiment_id=experiment_id,  # type: ignore[no-any-return]
                         filter=filter, order_by=order_by, max_results=max_results, page_token=page_token)

    def run(self, run_id: str) -> dict[str, Any]:
        return self._get(f"runs/{_segment(run_id)}")  # type: ignore[no-any-return]

    def metric_history(self, run_id: str, key: str, max_points: int = 1000) -> dict[str, Any]:
        return self._get(f"runs/{_segment(run_id)}/metric-history", key=key,  # type: ignore[no-any-return]
                         max_points=max_points)

    def compare(self, project: str, run_ids: list[str], max_points: int = 500) -> dict[str, Any]:
        return self._get(f"projects/{_segment(project)}/compare", run=list(run_ids),  # type: ignore[no-any-return]
                         max_points=max_points)

    def models(self, project: str) -> list[dict[str, Any]]:
        return self._get(f"projects/{_segment(project)}/models")["models"]  # type: ignore[no-any-return]

    # ----- datasets -----

    def datasets(self, project: str) -> list[dict[str, Any]]:
        return self._get(f"projects/{_segment(project)}/datasets")["datasets"]  # type: ignore[no-any-return]

    def dataset_versions(self, project: str, name: str) -> list[dict[str, Any]]:
        path = f"projects/{_segment(project)}/datasets/{_segment(name)}/versions"
        return self._get(path)["versions"]  # type: ignore[no-any-return]

    def dataset_diff(self, project: str, name: str, before: int, after: int) -> dict[str, Any]:
        path = f"projects/{_segment(project)}/datasets/{_segment(name)}/diff"
        return self._get(path, **{"from": before, "to": after})  # type: ignore[no-any-return]

    def lineage(self, node: str, depth: int = 4) -> dict[str, Any]:
        return self._get("lineage", node=node, depth=depth)  # type: ignore[no-any-return]

    def annotation_tasks(self, project: str) -> list[dict[str, Any]]:
        return self._get(f"projects/{_segment(project)}/annotations")["tasks"]  # type: ignore[no-any-return]

    # ----- resources (None where the resource monitor is not deployed) -----

    def resources_now(self) -> dict[str, Any] | None:
        """The newest sample: ``host``, ``gpu_available``/``no_gpu_reason`` and ``devices`` with their
        processes and jobs (other projects' jobs hidden by the platform)."""
        return self._optional("resources/now")  # type: ignore[no-any-return]

    def resources_history(self, seconds: int = 3600, max_points: int = 500) -> dict[str, Any] | None:
        """Column-wise series of the last ``seconds``: ``host`` and each of ``devices`` hold ``t`` (epoch
        seconds) and one list per measurement."""
        return self._optional("resources/history", since=time.time() - seconds,  # type: ignore[no-any-return]
                              max_points=max_points)

    def resources_usage(self, by: str = "user") -> dict[str, Any] | None:
        """GPU-hours by ``user`` or ``project``, over the jobs of the viewer's projects."""
        return self._optional("resources/usage", by=by)  # type: ignore[no-any-return]
