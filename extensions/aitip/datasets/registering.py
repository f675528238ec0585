"""Registering a version, the half of the dataset service that writes: the upload is staged (hashed as it
streams; a zip of an image folder unpacked as it streams, its central directory checked at the end), its
schema detected and its quality checked against the dataset's gate, then a pending catalog row claims the
version number (claimed again when a concurrent registration took it), the registry commits and tags the
data, and the row is marked ready. Any failure leaves no version, no tag, and nothing staged or cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit import record as audit_record
from ..catalog.base import utcnow
from ..operations.actions import action_of, performs
from ..errors import Conflict, InvalidInput
from ..identity.principal import Principal
from ..identity.roles import Role
from ..projects.access import authorize, refuse_if_archived
from .models import (
    DatasetSettings,
    DatasetVersion,
)
from .registry import CommittedVersion, tag_name
from .staging import StagedUpload, UnpackedFolder, unpack_image_archive
from .tables import DatasetRecord, DatasetVersionRecord
from .tabular import detect_format, tabular_schema

log = logging.getLogger("aitip.datasets")

# A version claimed but never finished (the platform died mid-registration) is cleaned up after this.
STALE_PENDING = timedelta(hours=1)
# Claims of one dataset's next version that lost to concurrent registrations, before giving up (409).
CLAIM_ATTEMPTS = 5


@dataclass(frozen=True)
class VersionClaim:
    dataset_id: int
    version: int
    created_dataset: bool
    role: Role = Role.viewer  # the registering caller's: what the answer may show of the new version
    actor: str = ""  # who registers it, and with which action, for the audit trail
    action: str = ""


@dataclass(frozen=True)
class QualityOutcome:
    """What the quality step hands back: the stored summary, and whether the gate let it through."""

    summary: dict[str, Any]
    rows: int | None
    passed: bool
    failures: list[dict[str, Any]]


QualityCheck = Callable[[Path, str, dict[str, Any]], QualityOutcome]


def no_quality_check(path: Path, fmt: str, rules: dict[str, Any]) -> QualityOutcome:
    return QualityOutcome({}, None, True, [])


@contextlib.contextmanager
def _step(upload: StagedUpload, name: str) -> Iterator[None]:
    """Times one registration step into ``upload.timings`` (and tells ``upload.on_step`` it started)."""
    if upload.on_step is not None:
        upload.on_step(name)
    started = time.perf_counter()
    try:
        yield
    finally:
        upload.timings[name] = time.perf_counter() - started



class VersionRegistering:
    """Mixed into :class:`~aitip.datasets.service.DatasetService`, whose registry, catalog and readers it uses."""

    # ----- uploads -----

    def start_upload(self, filename: str, fmt: str | None = None) -> StagedUpload:
        """Staging for an upload of ``filename`` (its format from the name, or ``fmt``; an unknown or
        mismatched one is refused before a byte is received). A zip of an image folder is unpacked as it
        streams in."""
        images = detect_format(filename, fmt) == "images"
        return StagedUpload(self.staging_root, filename, self.max_upload_bytes,
                            archive_limits=self.archive_limits if images else None)

    async def check_can_write(self, principal: Principal | None, project: str, *, action: str | None = None) -> None:
        """Refuse before a byte is received, not after a gigabyte (``action``: ``datasets.register``'s by default)."""
        principal = self._signed_in(principal)
        wanted = action or action_of("datasets.register")
        await self._in_transaction(lambda s: refuse_if_archived(authorize(s, principal, wanted, project)[0]))

    @performs
    async def register_content(self, principal: Principal | None, project: str, name: str, content: bytes, *,
                               filename: str, fmt: str | None = None, message: str = "", action: str) -> DatasetVersion:
        """Register a file already in memory (an agent's, sent inline) as the next version: staged, checked and
        committed as a streamed upload is, nothing kept when it is refused."""
        await self.check_can_write(principal, project, action=action)
        upload = await self.stage_content(content, filename, fmt)
        return await self.register(principal, project, name, upload, fmt=fmt, message=message, action=action)

    async def stage_content(self, content: bytes, filename: str, fmt: str | None) -> StagedUpload:
        """A file already in memory, staged as an upload of it would be (nothing kept when it is refused)."""
        upload = self.start_upload(filename, fmt)

        def stage() -> None:
            upload.write(content)
            upload.finish()

        try:
            await asyncio.to_thread(stage)
        except BaseException:
            upload.discard()
            raise
        return upload

    async def register(self, principal: Principal | None, project: str, name: str, upload: StagedUpload, *,
                       fmt: str | None = None, message: str = "", settings: DatasetSettings | None = None,
                       restored_from: int | None = None, derived_from: int | None = None,
                       inherited_masks: tuple[dict[str, str], str] | None = None,
                       action: str | None = None) -> DatasetVersion:
        """Turn a finished upload into the dataset's next version, or leave nothing behind (``action``: the
        operation's, ``datasets.register``'s by default).

        ``inherited_masks`` (columns -> method, and the source's salt) are for data made from another
        dataset's sensitive values (an annotation export's item keys): they are added to the dataset's
        masking (never loosening it) and a new dataset takes the source's salt, so a value hashes alike in
        both."""
        principal = self._signed_in(principal)
        try:
            tag_name(project, name, version=1)  # the dataset name rule (a 422), before any work
            return await self._register(principal, project, name, upload, fmt, message, settings, restored_from,
                                        derived_from, inherited_masks, action or action_of("datasets.register"))
        finally:
            upload.discard()

    async def _register(self, principal: Principal, project: str, name: str, upload: StagedUpload,
                        fmt: str | None, message: str, settings: DatasetSettings | None,
                        restored_from: int | None, derived_from: int | None,
                        inherited_masks: tuple[dict[str, str], str] | None, action: str) -> DatasetVersion:
        rules = await self._in_transaction(lambda s: self._rules_for_write(s, principal, project, name, settings,
                                                                           action))
        fmt = detect_format(upload.filename, fmt)
        with _step(upload, "unpack"):
            content, folder = await asyncio.to_thread(self._prepare_content, upload, fmt)
        with _step(upload, "quality"):
            quality = await asyncio.to_thread(self.quality_check, content, fmt, rules)
            schema = self._schema_from_report(quality.summary) or await asyncio.to_thread(self._schema, content,
                                                                                          fmt, folder)
        if not quality.passed:
            await self._publish(project, "dataset.rejected", {
                "summary": f"the quality gate rejected a new version of {project}/{name}", "project": project,
                "dataset": name, "author": principal.name, "failures": quality.failures[:20]})
            raise InvalidInput("the data-quality gate rejected this version of {name!r}: {failures}",
                               code="quality_gate_failed", detail={"failures": quality.failures}, name=name,
                               failures="; ".join(f["message"] for f in quality.failures))
        claim = await self._claim(lambda s: self._claim_version(s, principal, project, name, settings, fmt, message,
                                                                restored_from, derived_from, inherited_masks, action))
        previous_commit = await asyncio.to_thread(self.registry.previous_commit)
        try:
            with _step(upload, "commit"):
                committed = await asyncio.to_thread(
                    self.registry.commit_version, project, name, claim.version, content, is_dir=fmt == "images",
                    suffix=Path(upload.filename).suffix.lower() if fmt != "images" else "",
                    file_md5s=dict(folder.files) if folder else {"": upload.md5 or ""},
                    message=message, author=principal.name)
        except BaseException:
            await self._in_transaction(lambda s: self._drop_claim(s, claim))
            raise
        try:
            ready = await self._in_transaction(lambda s: self._announce(s, self._mark_ready(s, claim, committed,
                                                                                            schema, quality)))
        except BaseException:
            await asyncio.to_thread(self.registry.undo_version, committed, previous_commit)
            await self._in_transaction(lambda s: self._drop_claim(s, claim))
            raise
        if self.events is not None:
            self.events.notify()
        self.registry.push_later(committed.tag)
        log.info("registered %s/%s v%d (%d bytes): %s", project, name, ready.version, upload.size,
                 ", ".join(f"{step} {seconds:.2f} s" for step, seconds in upload.timings.items()))
        return ready

    def _announce(self, session: Session, version: DatasetVersion) -> DatasetVersion:
        """``dataset.registered`` to the project's subscribers, queued with the version's commit."""
        if self.events is not None:
            self.events.publish_in(session, version.project, "dataset.registered", {
                "summary": f"{version.project}/{version.dataset} v{version.version} registered by {version.author}",
                "project": version.project, "dataset": version.dataset, "version": version.version,
                "format": version.format, "rows": version.rows, "files": version.files,
                "content_md5": version.content_md5, "author": version.author, "message": version.message,
                "tag": version.tag})
        return version

    async def _publish(self, project: str, event: str, payload: dict[str, Any]) -> None:
        """An event about a refusal: it must not change what the caller is told, so a failure is only logged."""
        if self.events is None:
            return
        try:
            await self.events.publish(project, event, payload)
        except Exception:  # noqa: BLE001 - the refusal stands; the event is best effort
            log.exception("%s for project %s could not be queued", event, project)

    def _prepare_content(self, upload: StagedUpload, fmt: str) -> tuple[Path, UnpackedFolder | None]:
        """The staged content: the file, or the image folder (unpacked while it streamed in, or from the
        staged file when the upload was not started as an archive)."""
        if fmt != "images":
            if upload.is_archive:
                raise InvalidInput("{filename!r} was received as a zip of images, not as {fmt}",
                                   filename=upload.filename, fmt=fmt)
            return upload.path, None
        if upload.folder is not None:
            return upload.folder.root, upload.folder
        folder = unpack_image_archive(upload.path, upload.directory / "data", self.archive_limits)
        upload.path.unlink()
        return folder.root, folder

    @staticmethod
    def _schema_from_report(report: dict[str, Any]) -> dict[str, Any] | None:
        """The quality pass already read every column: its names and types are the schema (no second pass)."""
        if report.get("kind") == "table" and report.get("columns"):
            return {"kind": "table", "rows": report.get("row_count"),
                    "columns": [{"name": c["name"], "type": c["type"]} for c in report["columns"]]}
        if report.get("kind") == "image_folder":
            return {"kind": "images", "files": report.get("file_count"),
                    "classes": {c["value"]: c["count"] for c in (report.get("class_balance") or {}).get("classes", [])}}
        return None

    @staticmethod
    def _schema(content: Path, fmt: str, folder: UnpackedFolder | None) -> dict[str, Any]:
        if folder is not None:
            classes: dict[str, int] = {}
            for relative in folder.files:
                top = relative.split("/", 1)[0] if "/" in relative else ""
                classes[top] = classes.get(top, 0) + 1
            return {"kind": "images", "classes": classes, "files": len(folder.files)}
        return tabular_schema(content, fmt)

    def _rules_for_write(self, session: Session, principal: Principal, project: str, name: str,
                         settings: DatasetSettings | None, action: str) -> dict[str, Any]:
        """Check the caller may write (and, for an existing dataset's settings, manage); the gate's rules."""
        record, role = authorize(session, principal, action, project)
        refuse_if_archived(record)
        dataset = self._find(session, record.id, name)
        if settings is not None and dataset is not None and not role.at_least(Role.maintainer):
            authorize(session, principal, "dataset.manage", project)
        if settings is not None and settings.quality_rules is not None:
            return dict(settings.quality_rules)
        return dict(dataset.quality_rules or {}) if dataset is not None else {}

    @staticmethod
    def _apply_settings(dataset: DatasetRecord, settings: DatasetSettings) -> None:
        if settings.description is not None:
            dataset.description = settings.description
        if settings.sensitive_columns is not None:
            dataset.sensitive_columns = dict(settings.sensitive_columns)
        if settings.quality_rules is not None:
            from pydantic import ValidationError

            from .quality import QualityRules

            try:
                QualityRules.model_validate(settings.quality_rules)
            except ValidationError as error:
                raise InvalidInput("invalid quality rules: {msg}",
                                   code="invalid_quality_rules", msg=error.errors()[0]['msg']) from None
            dataset.quality_rules = dict(settings.quality_rules)

    async def _claim(self, claim: Callable[[Session], VersionClaim]) -> VersionClaim:
        """Claim the next version; a registration of the same dataset that claimed first (the dataset's row,
        or the same number) makes this one's transaction fail on the unique constraint: claim again."""
        for _ in range(CLAIM_ATTEMPTS - 1):
            with contextlib.suppress(IntegrityError):
                return await self._in_transaction(claim)
        try:
            return await self._in_transaction(claim)
        except IntegrityError:
            raise Conflict("other registrations of this dataset kept claiming the same version; try again",
                           code="registration_conflict") from None

    def _claim_version(self, session: Session, principal: Principal, project: str, name: str,
                       settings: DatasetSettings | None, fmt: str, message: str,
                       restored_from: int | None, derived_from: int | None,
                       inherited_masks: tuple[dict[str, str], str] | None, action: str) -> VersionClaim:
        """A pending row holds the next version number while the registry commits (a new dataset with it)."""
        record, role = authorize(session, principal, action, project)
        dataset = self._find(session, record.id, name)
        created = dataset is None
        if dataset is None:
            dataset = DatasetRecord(project_id=record.id, name=name, created_by=principal.name,
                                    mask_salt=secrets.token_hex(16))
            session.add(dataset)
        if settings is not None:
            self._apply_settings(dataset, settings)
        if inherited_masks is not None and inherited_masks[0]:
            masks, salt = inherited_masks
            if created:
                dataset.mask_salt = salt
            merged = dict(dataset.sensitive_columns or {})
            for column, method in masks.items():
                merged[column] = "redact" if "redact" in (method, merged.get(column)) else "hash"
            dataset.sensitive_columns = merged
        session.flush()
        self._clean_stale_claims(session, dataset.id)
        latest = session.scalar(select(func.max(DatasetVersionRecord.version))
                                .where(DatasetVersionRecord.dataset_id == dataset.id))
        parent = session.scalar(select(func.max(DatasetVersionRecord.version))
                                .where(DatasetVersionRecord.dataset_id == dataset.id,
                                       DatasetVersionRecord.state == "ready"))
        version = (latest or 0) + 1
        session.add(DatasetVersionRecord(dataset_id=dataset.id, version=version, state="pending", format=fmt,
                                         author=principal.name, message=message, restored_from=restored_from,
                                         parent_version=parent, derived_from_id=derived_from))
        session.flush()
        return VersionClaim(dataset.id, version, created, role, principal.name, action)

    def _clean_stale_claims(self, session: Session, dataset_id: int) -> None:
        stale = session.scalars(select(DatasetVersionRecord).where(
            DatasetVersionRecord.dataset_id == dataset_id, DatasetVersionRecord.state == "pending",
            DatasetVersionRecord.created_at < utcnow() - STALE_PENDING)).all()
        for record in stale:
            session.delete(record)

    @staticmethod
    def _drop_claim(session: Session, claim: VersionClaim) -> None:
        record = session.scalar(select(DatasetVersionRecord).where(
            DatasetVersionRecord.dataset_id == claim.dataset_id, DatasetVersionRecord.version == claim.version))
        if record is not None and record.state == "pending":
            session.delete(record)
        if claim.created_dataset:
            dataset = session.get(DatasetRecord, claim.dataset_id)
            if dataset is not None:
                session.delete(dataset)

    def _mark_ready(self, session: Session, claim: VersionClaim, committed: CommittedVersion,
                    schema: dict[str, Any], quality: QualityOutcome) -> DatasetVersion:
        record = session.scalar(select(DatasetVersionRecord).where(
            DatasetVersionRecord.dataset_id == claim.dataset_id, DatasetVersionRecord.version == claim.version))
        if record is None:
            raise Conflict("version {version} was claimed and then lost; register again", version=claim.version)
        record.state = "ready"
        record.content_md5 = committed.md5
        record.bytes = committed.size
        record.files = committed.files
        record.rows = quality.rows if quality.rows is not None else schema.get("rows")
        record.schema = schema
        record.quality = quality.summary
        record.git_commit = committed.commit
        record.tag = committed.tag
        record.data_path = committed.data_path
        session.flush()
        dataset = record.dataset
        audit_record(session, claim.actor, claim.action, f"dataset:{dataset.project.name}/{dataset.name}",
                     {"version": record.version, "bytes": record.bytes, "tag": record.tag})
        return self._version_for(record, claim.role)
