"""Scenario templates as a project sees them: the shipped library (read-only) and the project's own, each
save a new version (``simulation_templates``), found by name and version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..catalog.base import utcnow
from ..errors import NotFound
from . import library
from .models import Template, TemplateList
from .tables import SimulationTemplateRecord


def listed(session: Session, project_id: int) -> TemplateList:
    """The library's templates, then the project's, each at its latest version (with the versions it has)."""
    found = [library.summary(template, "library", [template["version"]]) for template in library.shipped().values()]
    rows = session.scalars(select(SimulationTemplateRecord).where(
        SimulationTemplateRecord.project_id == project_id).order_by(
        SimulationTemplateRecord.name, SimulationTemplateRecord.version)).all()
    by_name: dict[str, list[SimulationTemplateRecord]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    for versions in by_name.values():
        newest = versions[-1]
        found.append(library.summary(newest.resolved, "project", [row.version for row in versions],
                                     created_by=newest.created_by, created_at=newest.created_at))
    return TemplateList(templates=found)


def find(session: Session, project_id: int, name: str, version: int | None) -> Template:
    """A template of the library or of the project (its latest version when ``version`` is None), or 404."""
    shipped = library.shipped().get(name)
    if shipped is not None:
        if version not in (None, shipped["version"]):
            raise NotFound("the library's template {name!r} has no version {version} (it is at {version2})",
                           code="unknown_template_version",
                           name=name, version=version, version2=shipped['version'])
        return library.full(shipped, shipped, "library", [shipped["version"]])
    rows = session.scalars(select(SimulationTemplateRecord).where(
        SimulationTemplateRecord.project_id == project_id, SimulationTemplateRecord.name == name).order_by(
        SimulationTemplateRecord.version)).all()
    if not rows:
        known = sorted(library.shipped())
        raise NotFound("there is no scenario template named {name!r}; the library has: {known}",
                       code="unknown_template", name=name, known=', '.join(known))
    chosen = rows[-1] if version is None else next((row for row in rows if row.version == version), None)
    if chosen is None:
        raise NotFound("template {name!r} has no version {version}", code="unknown_template_version",
                       name=name, version=version)
    return library.full(chosen.resolved, chosen.body, "project", [row.version for row in rows],
                        created_by=chosen.created_by, created_at=chosen.created_at)


def save(session: Session, project: Any, name: str, written: dict[str, Any], author: str) -> Template:
    """The project's next version of template ``name``: ``written`` with its ``extends`` resolved against the
    library and the project's templates, checked whole (422 naming what is wrong) before it is stored."""
    current = session.scalar(select(func.max(SimulationTemplateRecord.version)).where(
        SimulationTemplateRecord.project_id == project.id, SimulationTemplateRecord.name == name))
    version = (current or 0) + 1
    own = {**written, "name": name, "version": version}
    resolved = library.resolve(own, lambda parent, number: find(session, project.id, parent, number).template)
    row = SimulationTemplateRecord(project_id=project.id, name=name, version=version, body=own, resolved=resolved,
                                   created_by=author, created_at=utcnow())
    row.project = project
    session.add(row)
    session.flush()
    return find(session, project.id, name, version)
