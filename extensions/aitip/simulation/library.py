"""The service's view of scenario templates: the shipped library, references (``name@version``), the API's
summaries, and what a template asks of a simulation (a model with gradients, a reference version, an endpoint).
Parsing, validation and judging are :mod:`.templates`, :mod:`.conditions` and :mod:`.verdicts`."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

from ..errors import InvalidInput, NotFound
from . import conditions, model_inspection, templates, verdicts
from .models import Template, TemplateSummary


@cache
def shipped() -> dict[str, dict[str, Any]]:
    """The shipped library, resolved: {name: template}."""
    return {name: template.model_dump(mode="json") for name, template in templates.shipped_templates().items()}


def from_yaml(text: str) -> dict[str, Any]:
    return templates.load_document(text)


def resolve(own: dict[str, Any], lookup: Callable[[str, int | None], dict[str, Any]]) -> dict[str, Any]:
    """``own`` with its ``extends`` applied (a parent through ``lookup(name, version)``: the library's or the
    project's), validated whole against the condition registry."""
    def parent(name: str, version: int | None) -> dict[str, Any] | None:
        try:
            return lookup(name, version)
        except NotFound:
            return None

    return templates.parse_template(own, parent).model_dump(mode="json")


@contextmanager
def refusals_about(field: str) -> Iterator[None]:
    """A template's 422s as refusals of the request's ``field``: each problem's field under it, as a check of
    its own (``value_error``), since the schema of a template's keys is the registry's, not the request's."""
    try:
        yield
    except InvalidInput as error:
        detail = error.detail if isinstance(error.detail, list) else [{"message": error.message}]
        error.detail = [{"field": f"{field}.{item['field']}" if item.get("field") else field,
                         "message": item.get("message", error.message), "type": "value_error"} for item in detail]
        raise


def split_ref(reference: str) -> tuple[str, int | None]:
    name, _, version = reference.partition("@")
    return name, int(version) if version else None


def _condition_names(template: dict[str, Any]) -> list[str]:
    return [entry["condition"] for entry in template.get("conditions") or ()]


def summary(template: dict[str, Any], source: str, versions: list[int], *, created_by: str | None = None,
            created_at: datetime | None = None) -> TemplateSummary:
    return TemplateSummary(name=template["name"], version=template["version"], source=source, kind=template["kind"],
                           title=template.get("title") or template["name"],
                           description=template.get("description") or "", metric=template["metric"],
                           conditions=_condition_names(template), thresholds=list(template.get("thresholds") or ()),
                           extends=template.get("extends"), versions=versions, created_by=created_by,
                           created_at=created_at)


def full(resolved: dict[str, Any], body: dict[str, Any], source: str, versions: list[int], *,
         created_by: str | None = None, created_at: datetime | None = None) -> Template:
    found = summary(resolved, source, versions, created_by=created_by, created_at=created_at)
    return Template(**found.model_dump(), template=resolved, body=body,
                    yaml=templates.to_yaml(templates.validate(resolved)))


def uses(template: dict[str, Any], condition: str) -> bool:
    return condition in _condition_names(template)


def drift_reference(template: dict[str, Any], given: int | None) -> int | None:
    """The dataset version a drift condition compares with: the one given, else the condition's own value."""
    entry = next((entry for entry in template.get("conditions") or () if entry["condition"] == "drift"), None)
    if entry is None:
        return None
    return given if given is not None else (int(entry["values"][0]) if entry.get("values") else None)


def needs_gradients(template: dict[str, Any]) -> bool:
    return bool(conditions.gradient_conditions(_condition_names(template)))


def check_gradients(template: dict[str, Any], model_path: Path) -> None:
    """422 (``gradients_required``) when the template attacks with gradients a model that has none."""
    found = model_inspection.gradient_support(model_path)
    if not found.has_gradients:
        conditions.refuse_gradient_attacks(_condition_names(template), found.reason, where="template")


def check_endpoint(endpoint: dict[str, Any]) -> None:
    """422 naming what is wrong with an endpoint description ($INPUT missing, a bad response field)."""
    from .http_target import HttpTarget

    HttpTarget.from_endpoint(endpoint)


def origin(uri: str) -> str:
    from ..jobs.egress import origin_of

    scheme, host = origin_of(uri)
    return f"{scheme}://{host}"


def judge(template: dict[str, Any], result: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    return verdicts.judge(template, result, previous)
