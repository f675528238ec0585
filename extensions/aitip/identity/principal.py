"""The authenticated caller as the domain services see it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """A JupyterHub user: name, hub groups, and whether the hub calls them admin.

    Hub admins are platform admins: they hold the ``admin`` role in every project. A job's kernel calls
    as its owner through the job's own credential: ``job_id`` says which job, and ``project_scope``
    confines it to the job's project (no role anywhere else, admin or not).
    """

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    job_id: int | None = None
    project_scope: str | None = None
