"""Where a person reads more of an event: the dashboard page of what it is about.

Only where the platform knows the address people open it at (``WebhookDispatcher.dashboards_url``, from the hub's
public URL): a link to a loopback address in a Slack channel would help nobody. A Slack message shows it as "Open
in AITIP", an e-mail as its ``url:`` line, a program reads ``data.url``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

# By event family: the page, and which of the payload's fields fill which of its address's arguments.
PAGES: dict[str, tuple[str, dict[str, str]]] = {
    "job": ("jobs", {"job": "job_id"}),
    "sweep": ("jobs", {"job": "best_job_id"}),
    "dataset": ("datasets", {"dataset": "dataset", "version": "version"}),
    "evaluation": ("evaluations", {"model": "model", "evaluation": "evaluation_id"}),
    "simulation": ("simulations", {"simulation": "simulation_id"}),
    "release": ("releases", {"release": "id"}),
    "rollout": ("releases", {"release": "release_id"}),
    "device_rollout": ("releases", {"release": "release"}),
}


def dashboards_url_from_hub(public_hub_url: str | None) -> str:
    """The dashboards' public address from the hub's (``$JUPYTERHUB_PUBLIC_HUB_URL``, e.g.
    ``https://aitip.example.org/prefix/hub/``): the hub's prefix, then ``services/dashboards/``; empty when the
    hub was given no public URL."""
    if not public_hub_url:
        return ""
    base = public_hub_url.rstrip("/").removesuffix("/hub")
    return f"{base}/services/dashboards/"


def page_url(dashboards_url: str, event: str, project: str | None, data: dict[str, Any]) -> str | None:
    """The page of ``event``'s subject, narrowed by what the payload names; None without an address or a page."""
    page = PAGES.get(event.split(".", 1)[0])
    if not dashboards_url or page is None or not project:
        return None
    name, fields = page
    arguments = {"project": project}
    for argument, field in fields.items():
        value = data.get(field)
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value):
            arguments[argument] = str(value)
    return f"{dashboards_url.rstrip('/')}/{name}?{urlencode(arguments)}"


def with_link(dashboards_url: str, event: str, project: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``url`` added where it has none and a page can be named."""
    if "url" in data:
        return data
    link = page_url(dashboards_url, event, project, data)
    return data if link is None else {**data, "url": link}
