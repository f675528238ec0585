"""Datasets from Python: register, inspect and read versions through the platform API.

In notebooks::

    import aitip.datasets
    df = aitip.datasets.to_pandas("digits", 2)       # project from $AITIP_PROJECT or project=...
    local = aitip.datasets.path("digits")             # the latest version, cached locally

Reads are cached under ``~/.cache/aitip/datasets/<project>/<name>/v<N>/`` by content hash, so a version
is fetched once. Callers below maintainer receive sensitive columns masked, as everywhere else.

Inside an AITIP job every read is lineage: a version the job did not declare is reported to the platform
with the job's own credential (``$AITIP_TOKEN``) before its bytes are handed over, cached or not; a read
that cannot be recorded raises instead of going untraced.

Where the data registry can be reached directly (``$AITIP_DATA_REGISTRY_URL``: its Git URL or path, and
``$AITIP_DATA_REMOTE``: the DVC remote it pushes to, if the registry's own cache is not at hand), tables
of datasets that declare no sensitive columns are read through ``dvc.api`` from the registry at the
version's tag, and checked against the version's content hash; everything else goes through the API.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from ..client import AitipAPIError, Client
from .models import Dataset, DatasetVersion, LineageGraph, Preview, VersionDiff
from .zipstream import ZipStream

UPLOAD_CHUNK = 1 << 20


def cache_root() -> Path:
    return Path(os.environ.get("AITIP_DATASET_CACHE", Path.home() / ".cache" / "aitip" / "datasets"))


class DatasetsAPI:
    """The dataset endpoints of one :class:`aitip.Client`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @staticmethod
    def _base(project: str, name: str | None = None) -> str:
        path = f"projects/{project}/datasets"
        return f"{path}/{name}" if name else path

    def list(self, project: str) -> list[Dataset]:
        return [Dataset.model_validate(d) for d in self.client.request("GET", self._base(project))["datasets"]]

    def get(self, project: str, name: str) -> Dataset:
        return Dataset.model_validate(self.client.request("GET", self._base(project, name)))

    def versions(self, project: str, name: str) -> list[DatasetVersion]:
        body = self.client.request("GET", f"{self._base(project, name)}/versions")
        return [DatasetVersion.model_validate(v) for v in body["versions"]]

    def version(self, project: str, name: str, version: int | None = None) -> DatasetVersion:
        if version is None:
            latest = self.get(project, name).latest_version
            if latest is None:
                raise AitipAPIError(404, "not_found", f"dataset {name!r} has no version yet")
            version = latest
        return DatasetVersion.model_validate(self.client.request("GET", f"{self._base(project, name)}/versions/{version}"))

    def add(self, project: str, name: str, source: str | Path, *, message: str = "",
            format: str | None = None) -> DatasetVersion:  # noqa: A002 - the API's word
        """Register a file, or a folder of class sub-folders (sent as a zip made on the fly), as the next
        version. The upload carries its Content-Length (the platform then reads it without chunk framing)
        and asks first (``Expect: 100-continue``): a refused upload is not sent."""
        source = Path(source)
        with _upload_body(source) as (body, length, filename):
            params: dict[str, Any] = {"filename": filename, "message": message}
            if format:
                params["format"] = format
            answer = self.client.upload(f"{self._base(project, name)}/versions", body, length, params=params)
        return DatasetVersion.model_validate(answer)

    def diff(self, project: str, name: str, before: int, after: int) -> VersionDiff:
        body = self.client.request("GET", f"{self._base(project, name)}/diff", params={"from": before, "to": after})
        return VersionDiff.model_validate(body)

    def restore(self, project: str, name: str, version: int, *, message: str = "") -> DatasetVersion:
        body = self.client.request("POST", f"{self._base(project, name)}/versions/{version}/restore",
                                   json_body={"message": message})
        return DatasetVersion.model_validate(body)

    def preview(self, project: str, name: str, version: int, *, limit: int = 20) -> Preview:
        body = self.client.request("GET", f"{self._base(project, name)}/versions/{version}/preview",
                                   params={"limit": limit})
        return Preview.model_validate(body)

    def lineage(self, node: str, *, depth: int = 4) -> LineageGraph:
        return LineageGraph.model_validate(self.client.request("GET", "lineage", params={"node": node, "depth": depth}))

    def download(self, project: str, name: str, version: int, destination: Path) -> list[str]:
        """Stream a version to ``destination`` (atomically); returns the columns that came masked."""
        url = f"{self._base(project, name)}/versions/{version}/download"
        with _written_atomically(destination) as partial, \
                self.client._http.stream("GET", url, timeout=httpx.Timeout(30.0, read=3600.0)) as response:
            if response.status_code >= 400:
                response.read()
                Client._raise(response)
            masked = [c for c in response.headers.get("X-AITIP-Masked-Columns", "").split(",") if c]
            for chunk in response.iter_bytes(UPLOAD_CHUNK):
                partial.write(chunk)
        return masked


@contextlib.contextmanager
def _written_atomically(destination: Path) -> Iterator[IO[bytes]]:
    """A file that becomes ``destination`` only if the block ends without an error; else nothing is left."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as partial:
        try:
            yield partial
            partial.flush()
            os.replace(partial.name, destination)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial.name)
            raise


@contextlib.contextmanager
def _upload_body(source: Path) -> Iterator[tuple[Iterator[bytes], int, str]]:
    """The bytes to send, their length, and the upload's file name: the file itself, or a folder as a zip
    streamed from its files (``ZipStream``; past the classic format's limits a ZIP64 archive is written to
    a temporary file first)."""
    if source.is_dir():
        stream = ZipStream(source)
        if stream.fits:
            yield iter(stream), stream.length, f"{source.name}.zip"
            return
        with tempfile.TemporaryFile() as archive:
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for entry in stream.entries:
                    zf.write(entry.path, entry.name.decode())
            length = archive.tell()
            archive.seek(0)
            yield _chunks(archive), length, f"{source.name}.zip"
        return
    with builtins.open(source, "rb") as data:
        yield _chunks(data), os.fstat(data.fileno()).st_size, source.name


def _chunks(data: IO[bytes]) -> Iterator[bytes]:
    while chunk := data.read(UPLOAD_CHUNK):
        yield chunk


def _project(project: str | None) -> str:
    project = project or os.environ.get("AITIP_PROJECT")
    if not project:
        raise ValueError("say which project: project=... (inside an AITIP job, $AITIP_PROJECT says it)")
    return project


def job_inputs() -> dict[str, dict[str, Any]]:
    """Inside an AITIP job: the dataset versions it declared, already on local disk (``$AITIP_INPUTS``)."""
    import json

    return json.loads(os.environ.get("AITIP_INPUTS") or "{}")


def _resolve(name: str, version: int | None, project: str | None, client: Client | None) -> tuple[Path, str]:
    declared = job_inputs().get(name if version is None else f"{name}@{version}")
    if declared is not None:
        return Path(declared["path"]), declared["format"]
    project = _project(project)
    own = client is None
    client = client or Client()
    try:
        api = DatasetsAPI(client)
        meta = api.version(project, name, version)
        suffix = Path(meta.data_path).suffix if meta.format != "images" else ".zip"
        local = cache_root() / project / name / f"v{meta.version}" / f"{meta.content_md5}{suffix}"
        if not local.exists():
            registry = os.environ.get("AITIP_DATA_REGISTRY_URL")
            if registry and meta.tag and meta.format != "images" and not api.get(project, name).sensitive_columns:
                fetch_with_dvc(registry, meta, local, remote=os.environ.get("AITIP_DATA_REMOTE") or None)
            else:
                api.download(project, name, meta.version, local)
        record_read(project, name, meta.version)
        return local, meta.format
    finally:
        if own:
            client.close()


def record_read(project: str, name: str, version: int) -> None:
    """Inside a job of ``project``: tell the platform the job read this version (outside jobs: nothing).

    The job's own credential reports it, whichever client fetched the bytes."""
    job_id = os.environ.get("AITIP_JOB_ID")
    if not job_id or os.environ.get("AITIP_PROJECT") != project:
        return
    if not os.environ.get("AITIP_TOKEN"):
        raise AitipAPIError(401, "no_job_credential", f"job {job_id} has no API credential ($AITIP_TOKEN), so "
                            f"reading {name} v{version} cannot be recorded as its lineage; declare it as an "
                            "input when submitting the job")
    with Client(os.environ.get("AITIP_URL"), os.environ["AITIP_TOKEN"]) as job_client:
        job_client.record_job_input(int(job_id), name, version)


def fetch_with_dvc(registry: str, meta: DatasetVersion, destination: Path, *, remote: str | None = None) -> Path:
    """A tabular version's bytes from the registry through ``dvc.api`` (the registry's cache, else its
    remote), written atomically to ``destination`` after its MD5 matched the version's."""
    import hashlib

    import dvc.api

    config = {"remote": {"registry": {"url": remote}}, "core": {"remote": "registry"}} if remote else None
    digest = hashlib.md5(usedforsecurity=False)
    with _written_atomically(destination) as partial, \
            dvc.api.open(meta.data_path, repo=registry, rev=meta.tag, mode="rb", config=config) as source:
        while chunk := source.read(UPLOAD_CHUNK):
            digest.update(chunk)
            partial.write(chunk)
        if digest.hexdigest() != meta.content_md5:
            raise AitipAPIError(409, "content_mismatch", f"{meta.dataset} v{meta.version} in {registry} has "
                                f"MD5 {digest.hexdigest()}, the platform recorded {meta.content_md5}")
    return destination


def path(name: str, version: int | None = None, *, project: str | None = None, client: Client | None = None) -> Path:
    """A local path holding the version's bytes (a job's declared input, or fetched once and cached)."""
    return _resolve(name, version, project, client)[0]


def open(name: str, version: int | None = None, mode: str = "rb", *, project: str | None = None,  # noqa: A001
         client: Client | None = None) -> IO[Any]:
    """Open a version like a file (``mode`` "rb" or "r")."""
    if mode not in ("r", "rb"):
        raise ValueError("datasets are read-only: open them with mode 'r' or 'rb'")
    return builtins.open(path(name, version, project=project, client=client), mode)


def to_pandas(name: str, version: int | None = None, *, project: str | None = None, client: Client | None = None) -> Any:
    """A tabular version as a pandas DataFrame."""
    import pandas

    local, fmt = _resolve(name, version, project, client)
    if fmt == "csv":
        return pandas.read_csv(local)
    if fmt == "parquet":
        return pandas.read_parquet(local)
    if fmt == "jsonl":
        return pandas.read_json(local, lines=True)
    raise ValueError(f"{name} is an image folder, not a table; use aitip.datasets.path() for its files")
