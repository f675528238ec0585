"""The dataset registry service: permissions, the catalog, and the Git + DVC registry behind it.

Registering a version: the upload is staged (hashed as it streams; a zip of an image folder unpacked as
it streams, its central directory checked at the end), its schema detected and its quality checked
against the dataset's gate, then a pending catalog row claims the version number, the registry commits
and tags the data, and the row is marked ready. Any failure leaves no version, no tag, and nothing
staged or cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
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
from ..catalog.service import CatalogService
from ..catalog.store import Catalog
from ..jobs import reads as job_reads
from ..operations.actions import action_of, performs
from ..errors import Conflict, InvalidInput, NotFound
from ..identity.principal import Principal
from ..identity.roles import Role
from ..projects.access import authorize, refuse_if_archived
from .lineage import ModelRegistryView, lineage_graph
from .masking import mask_quality_report
from .models import (
    Dataset,
    DatasetSettings,
    DatasetVersion,
    LineageGraph,
    LineageQuery,
    Preview,
    SchemaChange,
    VersionDiff,
)
from .registry import CommittedVersion, DataRegistry, tag_name
from .staging import ArchiveLimits, StagedUpload, UnpackedFolder, unpack_image_archive
from .tables import DatasetRecord, DatasetVersionRecord, JobInputRecord
from .thumbnails import ThumbnailQuery, Thumbnails, class_thumbnails
from .tabular import DatasetFormatError, detect_format, masked_export, masked_preview, tabular_schema

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


@dataclass(frozen=True)
class Export:
    """A version's bytes ready to send: the cache object itself, or a masked copy made for this caller."""

    path: Path
    filename: str
    media_type: str
    masked_columns: list[str]
    temporary: bool


MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "jsonl": "application/x-ndjson",
               "images": "application/zip"}


class DatasetService(CatalogService):
    def __init__(self, catalog: Catalog, registry: DataRegistry, staging_root: Path, *,
                 max_upload_bytes: int = 5 << 30, archive_limits: ArchiveLimits | None = None,
                 quality_check: QualityCheck = no_quality_check, models: ModelRegistryView | None = None) -> None:
        super().__init__(catalog)
        self.models = models
        self.registry = registry
        self.staging_root = staging_root
        self.max_upload_bytes = max_upload_bytes
        self.archive_limits = archive_limits or ArchiveLimits()
        self.quality_check = quality_check
        # The webhooks service, where the platform delivers them: dataset.registered / dataset.rejected go
        # to the project's subscribers (publish_in, in the transaction that makes the version ready).
        self.events: Any = None
        staging_root.mkdir(parents=True, exist_ok=True)

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
            raise InvalidInput(f"the data-quality gate rejected this version of {name!r}: "
                               + "; ".join(f["message"] for f in quality.failures),
                               code="quality_gate_failed", detail={"failures": quality.failures})
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
                raise InvalidInput(f"{upload.filename!r} was received as a zip of images, not as {fmt}")
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
                raise InvalidInput(f"invalid quality rules: {error.errors()[0]['msg']}",
                                   code="invalid_quality_rules") from None
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
            raise Conflict(f"version {claim.version} was claimed and then lost; register again")
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

    # ----- reading -----

    @staticmethod
    def _find(session: Session, project_id: int, name: str) -> DatasetRecord | None:
        return session.scalar(select(DatasetRecord).where(DatasetRecord.project_id == project_id,
                                                          DatasetRecord.name == name))

    def _load(self, session: Session, principal: Principal, action: str, project: str,
              name: str) -> tuple[DatasetRecord, Role]:
        record, role = authorize(session, principal, action, project)
        dataset = self._find(session, record.id, name)
        if dataset is None:
            raise NotFound(f"dataset {name!r} does not exist in project {project!r}")
        return dataset, role

    @staticmethod
    def _load_version(session: Session, dataset: DatasetRecord, version: int | None) -> DatasetVersionRecord:
        query = select(DatasetVersionRecord).where(DatasetVersionRecord.dataset_id == dataset.id,
                                                   DatasetVersionRecord.state == "ready")
        if version is None:
            record = session.scalar(query.order_by(DatasetVersionRecord.version.desc()).limit(1))
        else:
            record = session.scalar(query.where(DatasetVersionRecord.version == version))
        if record is None:
            which = "any version" if version is None else f"version {version}"
            raise NotFound(f"dataset {dataset.name!r} has no {which}")
        return record

    def _dataset_model(self, session: Session, dataset: DatasetRecord) -> Dataset:
        count, latest = session.execute(
            select(func.count(), func.max(DatasetVersionRecord.version))
            .where(DatasetVersionRecord.dataset_id == dataset.id, DatasetVersionRecord.state == "ready")).one()
        return Dataset(project=dataset.project.name, name=dataset.name, description=dataset.description,
                       sensitive_columns=dict(dataset.sensitive_columns or {}),
                       quality_rules=dict(dataset.quality_rules or {}), created_by=dataset.created_by,
                       created_at=dataset.created_at, latest_version=latest, versions=count)

    @staticmethod
    def _version_model(record: DatasetVersionRecord) -> DatasetVersion:
        source = record.derived_from
        return DatasetVersion.model_validate({
            "derived_from": f"{source.dataset.name}@{source.version}" if source is not None else None,
            "project": record.dataset.project.name, "dataset": record.dataset.name, "version": record.version,
            "format": record.format, "content_md5": record.content_md5, "bytes": record.bytes,
            "rows": record.rows, "files": record.files, "schema": record.schema or {},
            "quality": record.quality or {}, "message": record.message, "author": record.author,
            "parent_version": record.parent_version, "restored_from": record.restored_from,
            "git_commit": record.git_commit, "tag": record.tag, "data_path": record.data_path,
            "created_at": record.created_at})

    @classmethod
    def _version_for(cls, record: DatasetVersionRecord, role: Role) -> DatasetVersion:
        """A version as ``role`` may see it: below maintainer, the quality report's statistics of sensitive
        columns masked as previews mask their values (the registry keeps the report whole)."""
        version = cls._version_model(record)
        if role.at_least(Role.maintainer):
            return version
        dataset = record.dataset
        quality, masked = mask_quality_report(version.quality, dict(dataset.sensitive_columns or {}),
                                              dataset.mask_salt)
        if not masked:
            return version
        return version.model_copy(update={"quality": quality, "masked_columns": masked})

    @performs
    async def list_datasets(self, principal: Principal | None, project: str, *, action: str) -> list[Dataset]:
        principal = self._signed_in(principal)

        def work(session: Session) -> list[Dataset]:
            record, _ = authorize(session, principal, action, project)
            rows = session.scalars(select(DatasetRecord).where(DatasetRecord.project_id == record.id)
                                   .order_by(DatasetRecord.name)).all()
            return [self._dataset_model(session, row) for row in rows]

        return await self._in_transaction(work)

    @performs
    async def get(self, principal: Principal | None, project: str, name: str, *, action: str) -> Dataset:
        principal = self._signed_in(principal)
        return await self._in_transaction(
            lambda s: self._dataset_model(s, self._load(s, principal, action, project, name)[0]))

    @performs
    async def update_settings(self, principal: Principal | None, project: str, name: str,
                              settings: DatasetSettings, *, action: str) -> Dataset:
        principal = self._signed_in(principal)

        def work(session: Session) -> Dataset:
            dataset, _ = self._load(session, principal, action, project, name)
            self._apply_settings(dataset, settings)
            session.flush()
            return self._dataset_model(session, dataset)

        return await self._in_transaction(work)

    @performs
    async def versions(self, principal: Principal | None, project: str, name: str, *, action: str) -> list[DatasetVersion]:
        principal = self._signed_in(principal)

        def work(session: Session) -> list[DatasetVersion]:
            dataset, role = self._load(session, principal, action, project, name)
            rows = session.scalars(select(DatasetVersionRecord).where(
                DatasetVersionRecord.dataset_id == dataset.id, DatasetVersionRecord.state == "ready")
                .order_by(DatasetVersionRecord.version)).all()
            return [self._version_for(row, role) for row in rows]

        return await self._in_transaction(work)

    @performs
    async def version(self, principal: Principal | None, project: str, name: str,
                      version: int | None, *, action: str) -> DatasetVersion:
        principal = self._signed_in(principal)

        def work(session: Session) -> DatasetVersion:
            dataset, role = self._load(session, principal, action, project, name)
            return self._version_for(self._load_version(session, dataset, version), role)

        return await self._in_transaction(work)

    @performs
    async def diff(self, principal: Principal | None, project: str, name: str, before: int,
                   after: int, *, action: str) -> VersionDiff:
        principal = self._signed_in(principal)

        def load(session: Session) -> tuple[DatasetVersion, DatasetVersion]:
            dataset, _ = self._load(session, principal, action, project, name)
            return (self._version_model(self._load_version(session, dataset, before)),
                    self._version_model(self._load_version(session, dataset, after)))

        a, b = await self._in_transaction(load)
        return await asyncio.to_thread(self._diff, a, b)

    def _diff(self, a: DatasetVersion, b: DatasetVersion) -> VersionDiff:
        columns_a = {c["name"]: c["type"] for c in a.schema_.get("columns", [])}
        columns_b = {c["name"]: c["type"] for c in b.schema_.get("columns", [])}
        changes = [SchemaChange(column=c, change="added", before=None, after=columns_b[c])
                   for c in columns_b if c not in columns_a]
        changes += [SchemaChange(column=c, change="removed", before=columns_a[c], after=None)
                    for c in columns_a if c not in columns_b]
        changes += [SchemaChange(column=c, change="type_changed", before=columns_a[c], after=columns_b[c])
                    for c in columns_a if c in columns_b and columns_a[c] != columns_b[c]]
        added: list[str] = []
        removed: list[str] = []
        modified: list[str] = []
        if a.format == "images" and b.format == "images":
            manifest_a = self.registry.dir_manifest(a.content_md5)
            manifest_b = self.registry.dir_manifest(b.content_md5)
            added = sorted(set(manifest_b) - set(manifest_a))
            removed = sorted(set(manifest_a) - set(manifest_b))
            modified = sorted(p for p in set(manifest_a) & set(manifest_b) if manifest_a[p] != manifest_b[p])
        dvc_diff = self.registry.file_diff(a.tag or "", b.tag or "", f"{a.data_path}.dvc", f"{b.data_path}.dvc")
        rows_delta = b.rows - a.rows if a.rows is not None and b.rows is not None else None
        return VersionDiff(dataset=a.dataset, from_version=a.version, to_version=b.version, schema_changes=changes,
                           rows_before=a.rows, rows_after=b.rows, row_delta=rows_delta,
                           bytes_delta=b.bytes - a.bytes, content_changed=a.content_md5 != b.content_md5,
                           files_added=added, files_removed=removed, files_modified=modified, dvc_diff=dvc_diff)

    @performs
    async def restore(self, principal: Principal | None, project: str, name: str, version: int,
                      message: str = "", *, action: str) -> DatasetVersion:
        """An old version's content registered again as the newest version (history is never rewritten)."""
        principal = self._signed_in(principal)

        def load(session: Session) -> DatasetVersion:
            dataset, _ = self._load(session, principal, action, project, name)
            refuse_if_archived(dataset.project)
            return self._version_model(self._load_version(session, dataset, version))

        old = await self._in_transaction(load)
        suffix = Path(old.data_path).suffix if old.format != "images" else ".zip"
        upload = self.start_upload(f"restored{suffix}")
        try:
            if old.format == "images":
                archive = upload.directory / "restored.zip"
                await asyncio.to_thread(self._zip_version, old, archive)
                await asyncio.to_thread(upload.write_from, archive)
                archive.unlink()
            else:
                await asyncio.to_thread(upload.write_from, self.registry.object_path(old.content_md5))
            upload.finish()
        except BaseException:
            upload.discard()
            raise
        return await self.register(principal, project, name, upload, fmt=old.format,
                                   message=message or f"restore of version {version}", restored_from=version,
                                   action=action)

    def _zip_version(self, version: DatasetVersion, destination: Path) -> None:
        """An image-folder version as an uncompressed zip of its class folders."""
        import zipfile

        with zipfile.ZipFile(destination, "w", zipfile.ZIP_STORED) as archive:
            for relpath, md5 in self.registry.dir_manifest(version.content_md5).items():
                archive.write(self.registry.object_path(md5), relpath)

    @performs
    async def preview(self, principal: Principal | None, project: str, name: str, version: int | None,
                      limit: int, *, action: str) -> Preview:
        """The first rows, with sensitive columns masked for callers below maintainer."""
        principal = self._signed_in(principal)

        def load(session: Session) -> tuple[DatasetVersion, dict[str, str], str]:
            dataset, role = self._load(session, principal, action, project, name)
            masks = {} if role.at_least(Role.maintainer) else dict(dataset.sensitive_columns or {})
            return self._version_model(self._load_version(session, dataset, version)), masks, dataset.mask_salt

        record, masks, salt = await self._in_transaction(load)
        if record.format == "images":
            manifest = await asyncio.to_thread(self.registry.dir_manifest, record.content_md5)
            rows = [[path, path.split("/", 1)[0]] for path in sorted(manifest)[:limit]]
            return Preview(dataset=name, version=record.version, columns=["path", "class"], rows=rows,
                           masked_columns=[])
        path = self.registry.object_path(record.content_md5)
        try:
            columns, rows, masked = await asyncio.to_thread(masked_preview, path, record.format, limit, masks, salt)
        except DatasetFormatError as error:
            raise InvalidInput(str(error)) from None
        return Preview(dataset=name, version=record.version, columns=columns, rows=rows, masked_columns=masked)

    @performs
    async def thumbnails(self, principal: Principal | None, project: str, name: str, version: int | None,
                         query: ThumbnailQuery, *, action: str) -> Thumbnails:
        """A few small images per class of an image-folder version (class names are folder names, which no
        masking setting covers, as in previews)."""
        principal = self._signed_in(principal)

        def load(session: Session) -> DatasetVersion:
            dataset, _ = self._load(session, principal, action, project, name)
            return self._version_model(self._load_version(session, dataset, version))

        record = await self._in_transaction(load)
        if record.format != "images":
            raise InvalidInput(f"{name} v{record.version} is a {record.format} table, not an image folder: "
                               "its rows are in the preview", code="not_images")

        def make() -> Thumbnails:
            manifest = {path: self.registry.object_path(md5)
                        for path, md5 in self.registry.dir_manifest(record.content_md5).items()}
            classes, more = class_thumbnails(manifest, query)
            return Thumbnails(dataset=name, version=record.version, classes=classes, more_classes=more)

        return await asyncio.to_thread(make)

    async def export(self, principal: Principal | None, project: str, name: str, version: int, *,
                     action: str | None = None) -> Export:
        """A version's file for download (``action``: ``datasets.download``'s by default)."""
        principal = self._signed_in(principal)
        action = action or action_of("datasets.download")

        def load(session: Session) -> tuple[DatasetVersion, dict[str, str], str]:
            dataset, role = self._load(session, principal, action, project, name)
            masks = {} if role.at_least(Role.maintainer) else dict(dataset.sensitive_columns or {})
            return self._version_model(self._load_version(session, dataset, version)), masks, dataset.mask_salt

        record, masks, salt = await self._in_transaction(load)
        base = f"{name}-v{record.version}"
        if record.format == "images":
            destination = self.staging_root / f"export-{secrets.token_hex(8)}.zip"
            try:
                await asyncio.to_thread(self._zip_version, record, destination)
            except BaseException:
                destination.unlink(missing_ok=True)
                raise
            return Export(destination, f"{base}.zip", MEDIA_TYPES["images"], [], True)
        suffix = Path(record.data_path).suffix
        source = self.registry.object_path(record.content_md5)
        if not masks:
            return Export(source, f"{base}{suffix}", MEDIA_TYPES[record.format], [], False)
        destination = self.staging_root / f"export-{secrets.token_hex(8)}{suffix}"
        try:
            masked = await asyncio.to_thread(masked_export, source, record.format, masks, salt, destination)
        except BaseException:
            destination.unlink(missing_ok=True)
            raise
        return Export(destination, f"{base}{suffix}", MEDIA_TYPES[record.format], masked, True)

    async def lineage(self, principal: Principal | None, query: LineageQuery) -> LineageGraph:
        principal = self._signed_in(principal)
        return await self._in_transaction(lambda s: lineage_graph(s, principal, query.node, query.depth, self.models))

    def materialize_job_inputs(self, job_id: int, directory: Path, *,
                               private_registry: bool = False) -> dict[str, dict[str, Any]]:
        """Where a job's declared inputs can be read, for its kernel (``$AITIP_INPUTS``): the registry's
        read-only cache object, or a masked copy when the job's owner is below maintainer. With
        ``private_registry`` (kernels run as their owner, who cannot read the registry) every input is a
        copy in ``directory``."""
        with self.catalog.session() as session:
            job = job_reads.job(session, job_id)
            read = session.scalars(select(JobInputRecord).where(JobInputRecord.job_id == job_id)
                                   .order_by(JobInputRecord.id)).all()
            if job is None or not read:
                return {}
            owner_roles = [Role(m.role) for m in job.project.members if m.kind == "user" and m.name == job.owner]
            unmasked = bool(owner_roles) and Role.highest(owner_roles).at_least(Role.maintainer)
            wanted = [(self._version_model(i.dataset_version), dict(i.dataset_version.dataset.sensitive_columns or {}),
                       i.dataset_version.dataset.mask_salt) for i in read]
        inputs: dict[str, dict[str, Any]] = {}
        for version, masks, salt in wanted:
            entry: dict[str, Any] = {"version": version.version, "format": version.format,
                                     "content_md5": version.content_md5, "masked": []}
            if version.format == "images":
                target = directory / f"{version.dataset}-v{version.version}"
                if not target.exists():
                    directory.mkdir(parents=True, exist_ok=True)
                    self.registry.checkout_version_data(version.data_path, version.tag or "", target)
                entry["path"] = str(target)
            elif masks and not unmasked:
                directory.mkdir(parents=True, exist_ok=True)
                target = directory / f"{version.dataset}-v{version.version}{Path(version.data_path).suffix}"
                entry["masked"] = masked_export(self.local_path(version), version.format, masks, salt, target)
                entry["path"] = str(target)
            elif private_registry:
                directory.mkdir(parents=True, exist_ok=True)
                target = directory / f"{version.dataset}-v{version.version}{Path(version.data_path).suffix}"
                shutil.copyfile(self.local_path(version), target)
                entry["path"] = str(target)
            else:
                entry["path"] = str(self.local_path(version))
            inputs[version.dataset] = entry
        return inputs

    def local_path(self, version: DatasetVersion) -> Path:
        """Where the platform reads a version's bytes (its cache object), for downloads and jobs."""
        return self.registry.object_path(version.content_md5)

    async def close(self) -> None:
        await asyncio.to_thread(self.registry.close)
        shutil.rmtree(self.staging_root, ignore_errors=True)
