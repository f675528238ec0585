"""The releases domain's read API for the other domains: a firmware release as a device rollout needs it (what
was signed, the signature, the image), in a session they hold, without reading the releases' tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..i18n import N_
from ..projects.access import project_row
from .models import ReleaseKind, ReleaseState
from .signing import Signature
from .tables import ReleaseRecord

if TYPE_CHECKING:
    from ..projects.tables import ProjectRecord

SHIPPABLE = (ReleaseState.approved.value, ReleaseState.released.value)


@dataclass(frozen=True)
class FirmwareRelease:
    id: int
    name: str
    version: str
    state: str
    content: dict[str, Any]
    signature: Signature
    sha256: str
    hardware: str

    @property
    def title(self) -> str:
        return f"{self.name} {self.version}"


def firmware_release(session: Session, project: ProjectRecord, release_id: int) -> FirmwareRelease:
    """The project's firmware release ``release_id`` (404 when it has none; 422 when it is another kind)."""
    found = project_row(session, ReleaseRecord, release_id, project, N_("release"))
    if found.kind != ReleaseKind.firmware.value:
        raise InvalidInput("{name} {version} is a {kind} release: only firmware goes to devices",
                           code="release_not_firmware", name=found.name, version=found.version, kind=found.kind)
    image = found.content["subject"]["firmware"]
    return FirmwareRelease(id=found.id, name=found.name, version=found.version, state=found.state,
                           content=found.content,
                           signature=Signature(found.key_id, found.content_sha256, found.signature),
                           sha256=image["sha256"], hardware=image["hardware"])
