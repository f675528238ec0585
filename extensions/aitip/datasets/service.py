"""The dataset registry service: permissions, the catalog, and the Git + DVC registry behind it.

Registering a version is :mod:`.registering`'s (mixed in); this module reads, compares, restores, previews
and exports versions, and changes a dataset's settings.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..catalog.service import CatalogService
from ..catalog.store import Catalog
from ..jobs import reads as job_reads
from ..operations.actions import action_of, performs
from ..errors import InvalidInput, NotFound
from ..i18n import N_
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
from .registering import QualityCheck, QualityOutcome, VersionRegistering, no_quality_check
from .registry import DataRegistry
from .staging import ArchiveLimits
from .tables import DatasetRecord, DatasetVersionRecord, JobInputRecord
from .thumbnails import ThumbnailQuery, Thumbnails, class_thumbnails
from .tabular import DatasetFormatError, masked_export, masked_preview

__all__ = ["DatasetService", "Export", "QualityCheck", "QualityOutcome", "no_quality_check"]

log = logging.getLogger("aitip.datasets")

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



class DatasetService(VersionRegistering, CatalogService):
    def __init__(self, catalog: Catalog, registry: DataRegistry, staging_root: Path, *,
                 max_upload_bytes: int = 5 << 30, archive_limits: ArchiveLimits | None = None,
                 quality_check: QualityCheck = no_quality_check, models: ModelRegistryView | None = None) -> None:
        super().__init__(catalog)
        self.models = models
        # Other domains' parts of the lineage graph (aitip.datasets.lineage.LineageContributor), added at setup.
        self.lineage_contributors: list[Any] = []
        self.registry = registry
        self.staging_root = staging_root
        self.max_upload_bytes = max_upload_bytes
        self.archive_limits = archive_limits or ArchiveLimits()
        self.quality_check = quality_check
        # The webhooks service, where the platform delivers them: dataset.registered / dataset.rejected go
        # to the project's subscribers (publish_in, in the transaction that makes the version ready).
        self.events: Any = None
        staging_root.mkdir(parents=True, exist_ok=True)


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
            raise NotFound("dataset {name!r} does not exist in project {project!r}", name=name, project=project)
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
            raise NotFound(N_("dataset {name!r} has no version yet") if version is None
                           else N_("dataset {name!r} has no version {version}"), name=dataset.name, version=version)
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
            raise InvalidInput("{name} v{version} is a {format} table, not an image folder: its rows are in the "
                               "preview", code="not_images",
                               name=name, version=record.version, format=record.format)

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
        return await self._in_transaction(lambda s: lineage_graph(s, principal, query.node, query.depth, self.models,
                                                                  tuple(self.lineage_contributors)))

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
            inputs.setdefault(version.dataset, entry)  # by name: the first version declared of it
            inputs[f"{version.dataset}@{version.version}"] = entry
        return inputs

    def local_path(self, version: DatasetVersion) -> Path:
        """Where the platform reads a version's bytes (its cache object), for downloads and jobs."""
        return self.registry.object_path(version.content_md5)

    async def close(self) -> None:
        await asyncio.to_thread(self.registry.close)
        shutil.rmtree(self.staging_root, ignore_errors=True)
