"""The dataset registry end to end below the web layer: a real Git + DVC repository, a real catalog,
real DuckDB reads. Registration, change, diff, restore, masking, roles, and bad input that leaves
nothing behind (no version, no tag, no staged file, no cache object)."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aitip.catalog import Catalog
from aitip.datasets.models import DatasetSettings
from aitip.datasets.registry import DataRegistry
from aitip.datasets.service import DatasetService, QualityOutcome
from aitip.datasets.staging import ArchiveLimits
from aitip.errors import AitipError, NotFound, PermissionDenied
from aitip.identity.directory import DirectoryEntry
from aitip.identity.principal import Principal
from aitip.identity.roles import Role
from aitip.projects.models import MemberAdd, ProjectCreate
from aitip.projects.service import ProjectService
from tests.datasets.test_staging import make_zip, patch_directory
from tests.support.directories import FixedDirectory

ANN, BOB, VIC, EVE = Principal("ann"), Principal("bob"), Principal("vic"), Principal("eve")


@dataclass
class Registry:
    service: DatasetService
    root: Path
    staging: Path

    def run(self, coroutine):  # noqa: ANN001, ANN201
        return asyncio.run(coroutine)

    def register(self, who: Principal, name: str, filename: str, content: bytes, **kwargs):  # noqa: ANN003, ANN201
        upload = self.service.start_upload(filename)
        try:
            for start in range(0, len(content), 1 << 16):
                upload.write(content[start:start + (1 << 16)])
            upload.finish()
        except BaseException:
            upload.discard()
            raise
        return self.run(self.service.register(who, "lab", name, upload, **kwargs))

    def tags(self) -> list[str]:
        out = subprocess.run(["git", "tag", "-l"], cwd=self.root, capture_output=True, text=True, check=True)
        return sorted(out.stdout.split())

    def cache_objects(self) -> set[str]:
        cache = self.root / ".dvc" / "cache"
        return {str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()} if cache.exists() else set()

    def staged(self) -> list[Path]:
        return list(self.staging.iterdir())

    def workspace_clean(self) -> bool:
        out = subprocess.run(["git", "status", "--porcelain"], cwd=self.root, capture_output=True, text=True)
        return out.stdout.strip() == ""


def quality_gate(path: Path, fmt: str, rules: dict) -> QualityOutcome:
    """A real check of the gate plumbing: rows counted strictly (corrupt files fail) against min_rows."""
    from aitip.datasets.tabular import tabular_schema

    if fmt == "images":
        return QualityOutcome({}, None, True, [])
    rows = tabular_schema(path, fmt)["rows"]
    minimum = rules.get("min_rows", 0)
    failures = [] if rows >= minimum else [{"rule": "min_rows", "message": f"{rows} rows < {minimum}"}]
    return QualityOutcome({"rows": rows}, rows, not failures, failures)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    catalog.migrate()
    users = {p.name: DirectoryEntry(p.name, p.groups, p.is_admin) for p in (ANN, BOB, VIC, EVE)}
    projects = ProjectService(catalog, FixedDirectory(users, set()))
    asyncio.run(projects.create(ANN, ProjectCreate(name="lab")))
    asyncio.run(projects.add_member(ANN, "lab", MemberAdd(user="bob", role=Role.developer)))
    asyncio.run(projects.add_member(ANN, "lab", MemberAdd(user="vic", role=Role.viewer)))
    service = DatasetService(catalog, DataRegistry(tmp_path / "registry"), tmp_path / "staging",
                             max_upload_bytes=2 << 20, archive_limits=ArchiveLimits(max_total_bytes=8 << 20),
                             quality_check=quality_gate)
    yield Registry(service, tmp_path / "registry", tmp_path / "staging")
    service.registry.close()
    catalog.dispose()


def csv_bytes(rows: int, extra_column: bool = False) -> bytes:
    header = "id,email,score" + (",label" if extra_column else "")
    lines = [header] + [f"{i},user{i}@example.org,{i * 0.5}" + (f",{i % 2}" if extra_column else "")
                        for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes(rows: int) -> bytes:
    table = pa.table({"id": list(range(rows)), "value": [float(i) for i in range(rows)]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def zip_bytes(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return sink.getvalue()


def test_register_change_diff_and_restore(registry: Registry) -> None:
    v1 = registry.register(ANN, "users", "users.csv", csv_bytes(10), message="first")
    assert (v1.version, v1.rows, v1.format, v1.author) == (1, 10, "csv", "ann")
    assert v1.tag == "datasets/lab/users/v1" and v1.parent_version is None
    assert [c["name"] for c in v1.schema_["columns"]] == ["id", "email", "score"]

    v2 = registry.register(BOB, "users", "users.csv", csv_bytes(25, extra_column=True), message="more")
    assert (v2.version, v2.rows, v2.parent_version) == (2, 25, 1)
    assert registry.tags() == ["datasets/lab/users/v1", "datasets/lab/users/v2"]

    diff = registry.run(registry.service.diff(VIC, "lab", "users", 1, 2))
    assert diff.row_delta == 15 and diff.content_changed
    assert [(c.column, c.change) for c in diff.schema_changes] == [("label", "added")]
    assert v1.content_md5 in diff.dvc_diff and v2.content_md5 in diff.dvc_diff

    v3 = registry.run(registry.service.restore(BOB, "lab", "users", 1))
    assert (v3.version, v3.restored_from, v3.content_md5, v3.rows) == (3, 1, v1.content_md5, 10)
    assert registry.run(registry.service.diff(ANN, "lab", "users", 1, 3)).content_changed is False
    assert [v.version for v in registry.run(registry.service.versions(VIC, "lab", "users"))] == [1, 2, 3]
    assert registry.workspace_clean() and registry.staged() == []
    # The workspace holds the newest version, hardlinked from the cache (no second copy of the bytes).
    data = registry.root / "lab" / "users" / "data.csv"
    assert data.read_bytes() == csv_bytes(10) and os.stat(data).st_nlink == 2


def test_image_folder_versions_and_their_file_diff(registry: Registry) -> None:
    first = zip_bytes({"cat/1.png": b"\x89PNG-a", "cat/2.png": b"\x89PNG-b", "dog/1.png": b"\x89PNG-c"})
    v1 = registry.register(ANN, "pets", "pets.zip", first)
    assert v1.format == "images" and v1.files == 3 and v1.schema_["classes"] == {"cat": 2, "dog": 1}
    second = zip_bytes({"cat/1.png": b"\x89PNG-a", "cat/2.png": b"\x89PNG-B", "bird/1.png": b"\x89PNG-d"})
    registry.register(ANN, "pets", "pets.zip", second)
    diff = registry.run(registry.service.diff(ANN, "lab", "pets", 1, 2))
    assert (diff.files_added, diff.files_removed, diff.files_modified) == (["bird/1.png"], ["dog/1.png"],
                                                                          ["cat/2.png"])
    restored = registry.run(registry.service.restore(ANN, "lab", "pets", 1))
    assert restored.content_md5 == v1.content_md5
    again = registry.register(ANN, "pets", "pets.zip", first, message="the same files again")  # nothing to diff
    assert (again.version, again.content_md5) == (4, v1.content_md5) and registry.workspace_clean()


def test_parquet_and_jsonl(registry: Registry) -> None:
    parquet = registry.register(ANN, "numbers", "n.parquet", parquet_bytes(100))
    assert parquet.rows == 100 and {c["name"] for c in parquet.schema_["columns"]} == {"id", "value"}
    jsonl = registry.register(ANN, "events", "e.jsonl", b'{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    assert jsonl.rows == 2


def test_masking_depends_on_role(registry: Registry) -> None:
    registry.register(ANN, "users", "users.csv", csv_bytes(3),
                      settings=DatasetSettings(sensitive_columns={"email": "hash", "score": "redact"}))
    viewer = registry.run(registry.service.preview(VIC, "lab", "users", None, 10))
    maintainer = registry.run(registry.service.preview(ANN, "lab", "users", None, 10))
    assert viewer.masked_columns == ["email", "score"] and maintainer.masked_columns == []
    assert maintainer.rows[0] == [0, "user0@example.org", 0.0]
    assert viewer.rows[0][0] == 0 and viewer.rows[0][2] == "[redacted]"
    assert "@" not in viewer.rows[0][1] and len(viewer.rows[0][1]) == 16
    assert len({row[1] for row in viewer.rows}) == 3  # hashes still tell rows apart


@pytest.mark.parametrize(("who", "call", "error"), [
    (VIC, "register", PermissionDenied),  # viewers read, developers write
    (EVE, "register", NotFound),  # non-members learn nothing
    (EVE, "versions", NotFound),
    (BOB, "settings", PermissionDenied),  # changing masking and gates is for maintainers
])
def test_roles(registry: Registry, who: Principal, call: str, error: type[Exception]) -> None:
    registry.register(ANN, "users", "users.csv", csv_bytes(3))
    with pytest.raises(error):
        if call == "register":
            registry.register(who, "users", "users.csv", csv_bytes(4))
        elif call == "versions":
            registry.run(registry.service.versions(who, "lab", "users"))
        else:
            registry.run(registry.service.update_settings(who, "lab", "users",
                                                          DatasetSettings(sensitive_columns={})))
    assert len(registry.run(registry.service.versions(ANN, "lab", "users"))) == 1


def _truncated_parquet() -> bytes:
    return parquet_bytes(1000)[:-200]


BAD_INPUT = [
    ("truncated parquet", "d.parquet", _truncated_parquet(), {}, 422, "bad_dataset_file"),
    ("corrupt parquet", "d.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1", {}, 422, "bad_dataset_file"),
    ("invalid utf-8 csv", "d.csv", b"a,b\n1,\xff\xfe\n", {}, 422, "bad_dataset_file"),
    ("ragged csv", "d.csv", b"a,b\n1,2\n3,4,5\n6,7\n", {}, 422, "bad_dataset_file"),
    ("zip bomb", "d.zip", zip_bytes({"cat/bomb.png": b"\x00" * (6 << 20)}), {}, 422, "unsafe_archive"),
    ("zip with ..", "d.zip", zip_bytes({"../evil.png": b"x"}), {}, 422, "unsafe_archive"),
    ("zip with an absolute path", "d.zip", zip_bytes({"/etc/evil.png": b"x"}), {}, 422, "unsafe_archive"),
    ("zip with a symlink", "d.zip", zip_bytes({"cat/a.png": b"x"}, symlink="cat/link.png"), {}, 422,
     "unsafe_archive"),
    ("not a zip", "d.zip", b"this is not a zip", {}, 422, "bad_archive"),
    ("truncated zip", "d.zip", zip_bytes({"cat/a.png": b"\x89PNG-a" * 100, "cat/b.png": b"x"})[:-30], {}, 422,
     "bad_archive"),
    ("zip whose directory disagrees with its headers", "d.zip",
     patch_directory(zip_bytes({"cat/a.png": b"\x89PNG-a", "cat/b.png": b"\x89PNG-b"}), 1, name=b"cat/c.png"), {},
     422, "bad_archive"),
    ("zip bomb with its sizes after its data", "d.zip",
     make_zip({"cat/bomb.png": b"\x00" * (6 << 20)}, zipfile.ZIP_DEFLATED, streamed=True), {}, 422, "unsafe_archive"),
    ("zip with a name over 255 bytes", "d.zip", zip_bytes({"cat/" + "a" * 252 + ".png": b"x"}), {}, 422,
     "bad_archive"),
    ("zip with a folder name over 255 bytes", "d.zip", zip_bytes({"c" * 256 + "/a.png": b"x"}), {}, 422,
     "bad_archive"),
    ("zip with a multi-byte name over 255 bytes", "d.zip", zip_bytes({"cat/" + "\u00e9" * 128 + ".png": b"x"}), {},
     422, "bad_archive"),
    ("zip with a path over 1024 bytes", "d.zip", zip_bytes({"/".join(["d" * 200] * 6) + "/a.png": b"x"}), {}, 422,
     "bad_archive"),
    ("zip with a long name, sizes after its data", "d.zip",
     make_zip({"cat/" + "a" * 300 + ".png": b"x"}, zipfile.ZIP_DEFLATED, streamed=True), {}, 422, "bad_archive"),
    ("over the upload limit", "d.csv", csv_bytes(80_000), {}, 413, "payload_too_large"),
    ("unknown extension", "d.exe", b"MZ", {}, 422, "unknown_format"),
    ("format mismatch", "d.csv", b"a\n1\n", {"fmt": "parquet"}, 422, "invalid_input"),
    ("quality gate", "d.csv", csv_bytes(3), {"settings": DatasetSettings(quality_rules={"min_rows": 5})}, 422,
     "quality_gate_failed"),
]


@pytest.mark.parametrize(("case", "filename", "content", "kwargs", "status", "code"), BAD_INPUT,
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_leaves_nothing_behind(registry: Registry, case: str, filename: str, content: bytes,
                                         kwargs: dict, status: int, code: str) -> None:
    registry.register(ANN, "keep", "keep.csv", csv_bytes(3))  # an existing version must survive untouched
    tags, cache = registry.tags(), registry.cache_objects()
    with pytest.raises(AitipError) as raised:
        registry.register(ANN, "data", filename, content, **kwargs)
    assert (raised.value.status, raised.value.code) == (status, code), raised.value.message
    assert registry.tags() == tags and registry.cache_objects() == cache
    assert registry.staged() == [] and registry.workspace_clean()
    with pytest.raises(NotFound):  # not even an empty dataset is left
        registry.run(registry.service.versions(ANN, "lab", "data"))
    assert [v.version for v in registry.run(registry.service.versions(ANN, "lab", "keep"))] == [1]


BAD_NAMES = ["../escape", "a/b", "UPPER", "", ".hidden", "x" * 101, "x.lock", "a..b", "x.", "a.b.lock", "a@{b",
             "a b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "\u00e9t\u00e9"]
GOOD_NAMES = ["users", "x.lock.y", "lock", "a.lock_", "a.loc", "a.locks", "train.v2", "a_b-c", "0", "x" * 100,
              "x.dvc", "dvc.yaml"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(registry: Registry, name: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from aitip.datasets.models import DatasetName

    with pytest.raises(ValidationError):
        TypeAdapter(DatasetName).validate_python(name)


@pytest.mark.parametrize("name", ["x.lock", "a..b", "x.", "y" * 101, "a.b.lock"])
def test_a_registration_under_a_bad_name_is_a_422_that_leaves_nothing(registry: Registry, name: str) -> None:
    """Git refuses these as tag names (or a file system as folder names): refused before any work, not a
    failed ``git tag`` after the commit."""
    registry.register(ANN, "keep", "keep.csv", csv_bytes(3))
    tags, cache = registry.tags(), registry.cache_objects()
    with pytest.raises(AitipError) as raised:
        registry.register(ANN, name, "d.csv", csv_bytes(3))
    assert (raised.value.status, raised.value.code) == (422, "invalid_input"), raised.value.message
    assert raised.value.detail[0]["field"] == "dataset"
    assert registry.tags() == tags and registry.cache_objects() == cache
    assert registry.staged() == [] and registry.workspace_clean()
    assert [d.name for d in registry.run(registry.service.list_datasets(ANN, "lab"))] == ["keep"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_register_and_tag(registry: Registry, name: str) -> None:
    version = registry.register(ANN, name, "d.csv", csv_bytes(2))
    assert version.tag == f"datasets/lab/{name}/v1" and registry.tags() == [version.tag]


def test_one_rule_for_urls_models_and_tags() -> None:
    """The router's pattern, the pydantic type and the rule's own checks accept exactly the same names, and
    Git accepts every one of them in a version tag (hypothesis draws names near the rule's edges)."""
    import re

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from pydantic import TypeAdapter, ValidationError

    from aitip.datasets.models import DatasetName
    from aitip.datasets.registry import tag_name
    from aitip.schema import DATASET_NAME_MAX_LENGTH, DATASET_NAME_REGEX, dataset_name_error
    from aitip.server.routes import PARAMETER_PATTERNS

    assert PARAMETER_PATTERNS["dataset"] == DATASET_NAME_REGEX
    router = re.compile(PARAMETER_PATTERNS["dataset"])
    adapter = TypeAdapter(DatasetName)
    accepted: list[str] = []

    @settings(max_examples=600, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.text(alphabet="abl.ock-_0@{/~^: ", max_size=12), st.from_regex(DATASET_NAME_REGEX,
                                                                                     fullmatch=True),
                     st.sampled_from(BAD_NAMES + GOOD_NAMES)))
    def check(name: str) -> None:
        by_rule = dataset_name_error(name) is None
        by_router = router.fullmatch(name) is not None and len(name) <= DATASET_NAME_MAX_LENGTH
        try:
            adapter.validate_python(name)
            by_model = True
        except ValidationError:
            by_model = False
        assert by_rule == by_router == by_model, name
        if by_rule:
            accepted.append(tag_name("lab", name, 1))
        else:
            with pytest.raises(AitipError):
                tag_name("lab", name, 1)

    check()
    assert len(accepted) > 50
    for tag in set(accepted):
        result = subprocess.run(["git", "check-ref-format", tag], capture_output=True)
        assert result.returncode == 0, f"git refuses {tag}"


def test_a_failure_inside_the_registry_undoes_commit_tag_and_cache(registry: Registry,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    registry.register(ANN, "users", "users.csv", csv_bytes(3))
    tags, cache = registry.tags(), registry.cache_objects()
    original = registry.service.registry._git

    def failing_tag(*args: str, check: bool = True) -> str:
        if args[:2] == ("tag", "-a"):
            raise RuntimeError("disk full while tagging")
        return original(*args, check=check)

    monkeypatch.setattr(registry.service.registry, "_git", failing_tag)
    with pytest.raises(RuntimeError, match="disk full"):
        registry.register(ANN, "users", "users.csv", csv_bytes(7))
    monkeypatch.setattr(registry.service.registry, "_git", original)
    assert registry.tags() == tags and registry.cache_objects() == cache and registry.workspace_clean()
    assert (registry.root / "lab" / "users" / "data.csv").read_bytes() == csv_bytes(3)
    v2 = registry.register(ANN, "users", "users.csv", csv_bytes(7))
    assert v2.version == 2  # the failed attempt's number was given back
