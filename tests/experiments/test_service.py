"""The experiments service on a real MLflow store: the SQL reader gives the same runs in the same order
as MLflow's own search (SQLite and PostgreSQL), project rules, run detail, curves, comparison, models,
page tokens, and LTTB downsampling."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aitip.catalog import Catalog
from aitip.errors import BadRequest, InvalidInput, NotFound
from aitip.experiments.client_reader import ClientTrackingReader, run_from_entity
from aitip.experiments.downsample import lttb_indices
from aitip.experiments.models import (
    CompareQuery,
    ExperimentListQuery,
    MetricHistoryQuery,
    RunListQuery,
)
from aitip.experiments.page_tokens import InvalidPageToken, PageTokens
from aitip.experiments.records import Curve, project_of_experiment
from aitip.experiments.search import InvalidSearch, parse_run_search
from aitip.experiments.service import ExperimentService, curve_points
from aitip.experiments import sql_reader
from aitip.experiments.sql_reader import SqlTrackingReader
from aitip.identity.directory import DirectoryEntry
from aitip.identity.principal import Principal
from aitip.identity.roles import Role
from aitip.jobs.tables import JobRecord
from aitip.projects.models import MemberAdd, ProjectCreate
from aitip.projects.service import ProjectService
from aitip.projects.tables import ProjectRecord

from tests.support.directories import FixedDirectory

ANN = Principal("ann")  # admin of lab and other
VIC = Principal("vic")  # viewer of lab
EVE = Principal("eve")  # in no project
BASE_TIME = 1_700_000_000_000
LAB_RUNS = 36
HISTORY_POINTS = 3000


@dataclass
class TrackingStore:
    uri: str
    lab: str  # experiment ids
    lab_extra: str
    other: str
    legacy: str
    lab_runs: list[str]  # creation order
    other_runs: list[str]
    default_runs: list[str]
    deleted_run: str


def build_tracking_store(uri: str, artifact_root: Path) -> TrackingStore:
    """A store shaped like the platform's: ``aitip/<project>`` experiments tagged with their project,
    runs with varied params, metrics (NaN, inf, missing), tags, statuses, tied start times, a deleted
    run, a long metric history, artifacts, and registered model versions from two projects."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def experiment(name: str, project: str | None) -> str:
        tags = {"aitip.project": project} if project else {}
        return client.create_experiment(name, artifact_location=(artifact_root / name.replace("/", "_")).as_uri(),
                                        tags={**tags, "purpose": "test"})

    lab, lab_extra = experiment("aitip/lab", "lab"), experiment("lab-extra", "lab")
    other, legacy = experiment("aitip/other", "other"), experiment("aitip/legacy", None)

    def run(experiment_id: str, index: int, *, start: int, name: str, user: str = "ann") -> str:
        tags = {"mlflow.user": user if index % 3 else "bob", "team": ["vision", "nlp"][index % 2]}
        if index < 5:
            tags["aitip.job_id"] = str(100 + index)
        if index % 3 == 0:
            tags["note"] = "Baseline run" if index % 2 else "baseline"
        created = client.create_run(experiment_id, start_time=start, tags=tags, run_name=name)
        run_id = created.info.run_id
        params = [Param("lr", ["0.1", "0.01", "0.001"][index % 3]), Param("batch", str(16 * (1 + index % 4))),
                  Param("optimizer", ["adam", "sgd", "Adam"][index % 3])]
        if index % 5 == 0:
            params.append(Param("warmup", str(index)))
        metrics = [Metric("accuracy", (index * 37 % 100) / 100, start + 10, 1), Metric("loss", 1 / (index + 1),
                                                                                        start + 10, 1)]
        metrics.append(Metric("odd", float("nan") if index % 7 == 0 else float(index % 5), start + 10, 1))
        if index % 4 == 0:
            metrics.append(Metric("sparse", index * 0.5, start + 10, 1))
        if index == 8:
            metrics.append(Metric("odd_inf", float("inf"), start + 10, 1))
        client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("index", str(index))])
        if index % 9 == 0:
            return run_id  # still RUNNING: no end time
        client.set_terminated(run_id, "FAILED" if index % 6 == 1 else "FINISHED", end_time=start + 5000 + index)
        return run_id

    # Runs 3, 4 and 5 start at the same millisecond: MLflow breaks the tie by run id.
    starts = [BASE_TIME + 1000 * (4 if i in (3, 4, 5) else i) for i in range(LAB_RUNS)]
    lab_runs = [run(lab, i, start=starts[i], name=f"job-{i}" if i % 2 else f"Sweep-{i}") for i in range(LAB_RUNS)]
    lab_runs += [run(lab_extra, i, start=BASE_TIME + 500 + 1000 * i, name=f"extra-{i}") for i in range(4)]
    other_runs = [run(other, i, start=BASE_TIME + 700 + 1000 * i, name=f"other-{i}", user="olga") for i in range(5)]
    default_runs = [run("0", i, start=BASE_TIME + 900 + 1000 * i, name=f"default-{i}") for i in range(2)]
    deleted = lab_runs[-5]
    client.delete_run(deleted)

    history = [Metric("curve", math.sin(step / 300) + (step % 7) * 0.01, BASE_TIME + step, step)
               for step in range(HISTORY_POINTS)]
    history[17] = Metric("curve", float("nan"), BASE_TIME + 17, 17)
    for start in range(0, HISTORY_POINTS, 1000):
        client.log_batch(lab_runs[0], metrics=history[start:start + 1000])
    client.log_batch(lab_runs[1], metrics=[Metric("curve", step * 0.1, BASE_TIME + step, step) for step in range(50)])
    report = artifact_root.parent / "report.txt"
    report.write_text("hello")
    client.log_artifact(lab_runs[0], str(report), artifact_path="notebook")
    client.log_artifact(lab_runs[0], str(report))

    models = (artifact_root / "models").as_uri()
    client.create_registered_model("digits", description="digit classifier")
    client.create_model_version("digits", source=f"{models}/a", run_id=lab_runs[0])  # 1
    client.create_model_version("digits", source=f"{models}/b", run_id=other_runs[0])  # 2, another project's
    client.create_model_version("digits", source=f"{models}/c", run_id=lab_runs[1])  # 3
    client.set_registered_model_alias("digits", "champion", "3")
    client.set_registered_model_alias("digits", "theirs", "2")
    client.create_registered_model("other-only")
    client.create_model_version("other-only", source=f"{models}/d", run_id=other_runs[1])
    return TrackingStore(uri, lab, lab_extra, other, legacy, lab_runs, other_runs, default_runs, deleted)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingStore]:
    root = tmp_path_factory.mktemp(f"mlflow-{request.param}")
    if request.param == "sqlite":
        yield build_tracking_store(f"sqlite:///{root / 'mlflow.sqlite'}", root / "artifacts")
        return
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.conftest import POSTGRES_URL, _postgres_unreachable_reason

    reason = _postgres_unreachable_reason()
    if reason:
        pytest.skip(reason)
    name = f"aitip_mlflow_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database=name)
    try:
        yield build_tracking_store(url.render_as_string(hide_password=False), root / "artifacts")
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def reader(store: TrackingStore) -> Iterator[SqlTrackingReader]:
    reader = SqlTrackingReader(store.uri)
    yield reader
    reader.dispose()


@pytest.fixture(scope="module")
def mlflow_client(store: TrackingStore) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)


# ----- the SQL reader equals MLflow's own search -----

SEARCHES: list[tuple[str, list[str]]] = [
    ("", []),
    ("metrics.accuracy > 0.5", []),
    ("metrics.accuracy >= 0.37 and metrics.loss < 0.1", []),
    ("metrics.accuracy = 0.37", []),
    ("metrics.odd != 2", []),
    ("metrics.odd = 0", []),
    ("metrics.odd <= 1", []),
    ("metrics.sparse > -1", []),
    ("metrics.odd_inf > 1e300", []),
    ("params.lr = '0.1'", []),
    ("params.lr != '0.1'", []),
    ("params.optimizer LIKE 'a%'", []),
    ("params.optimizer ILIKE 'a%'", []),
    ("params.warmup IS NULL", []),
    ("params.warmup IS NOT NULL", []),
    ("params.lr = '0.01' and params.batch = '32'", []),
    ("tags.team = 'vision'", []),
    ("tags.note ILIKE '%baseline%'", []),
    ("tags.note LIKE 'baseline'", []),
    ("tags.note IS NULL", []),
    ("tags.`mlflow.user` = 'ann'", []),
    ("attributes.status = 'FINISHED'", []),
    ("attributes.status != 'RUNNING'", []),
    ("attributes.run_name LIKE 'job-%'", []),
    ("run_name ILIKE 'sweep-%'", []),
    ("`Run name` = 'job-3'", []),
    ("attributes.start_time > 1700000010000", []),
    ("created <= 1700000010000", []),
    ("attributes.end_time >= 1700000010000", []),
    ("attributes.user_id = 'ann'", []),
    ("attributes.artifact_uri LIKE '%aitip_lab/%'", []),
    ("metrics.accuracy > 0.2 and params.optimizer = 'Adam' and tags.team = 'nlp'", []),
    ("", ["metrics.accuracy DESC"]),
    ("", ["metrics.odd ASC"]),
    ("", ["metrics.odd DESC"]),
    ("", ["metrics.sparse DESC"]),
    ("", ["params.lr ASC", "metrics.loss DESC"]),
    ("", ["params.warmup DESC"]),
    ("", ["tags.note"]),
    ("", ["attributes.start_time ASC"]),
    ("", ["start_time DESC"]),
    ("", ["attributes.end_time DESC"]),
    ("", ["attributes.run_name ASC"]),
    ("", ["attributes.status", "metrics.accuracy ASC"]),
    ("", ["`metrics`.`accuracy` asc"]),
    ("", ["created DESC"]),
    ("params.lr = '0.1'", ["metrics.accuracy ASC", "tags.team DESC"]),
]


def _all_pages(search: Any, page_size: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        page, cursor = search(cursor)
        pages.append(page)
        if cursor is None:
            return pages


@pytest.mark.parametrize(("filter_string", "order_by"), SEARCHES, ids=[f"{f}|{o}" for f, o in SEARCHES])
def test_sql_reader_pages_equal_mlflow_search(store: TrackingStore, reader: SqlTrackingReader, mlflow_client: Any,
                                              filter_string: str, order_by: list[str]) -> None:
    experiments = [store.lab, store.lab_extra]
    search = parse_run_search(filter_string, order_by)
    ours = _all_pages(lambda cursor: reader.search_runs(experiments, search, 7, cursor), 7)
    theirs = _all_pages(lambda cursor: _mlflow_page(mlflow_client, experiments, filter_string, order_by, cursor), 7)
    assert [[r["run_id"] for r in page] for page in ours] == [[r["run_id"] for r in page] for page in theirs]
    strip = ("artifact_uri", "lifecycle_stage")
    assert [{k: v for k, v in run.items() if k not in strip} for page in ours for run in page] == \
        [{k: v for k, v in run.items() if k not in strip} for page in theirs for run in page]


def _mlflow_page(client: Any, experiments: list[str], filter_string: str, order_by: list[str],
                 token: str | None) -> tuple[list[dict[str, Any]], str | None]:
    page = client.search_runs(experiments, filter_string=filter_string, order_by=order_by, max_results=7,
                              page_token=token)
    return [run_from_entity(run) for run in page], page.token or None


def test_the_table_exercises_real_differences(store: TrackingStore, reader: SqlTrackingReader) -> None:
    """Guard against a vacuous equivalence: the searches select different, non-empty sets."""
    experiments = [store.lab, store.lab_extra]
    sizes = {f: len(_flatten(reader, experiments, f)) for f, order in SEARCHES if not order}
    assert sizes[""] == LAB_RUNS + 4 - 1  # the deleted run is not listed
    assert all(0 < size < sizes[""] for f, size in sizes.items() if f)
    assert len(set(sizes.values())) > 10


def _flatten(reader: SqlTrackingReader, experiments: list[str], filter_string: str) -> list[dict[str, Any]]:
    search = parse_run_search(filter_string, [])
    return [run for page in _all_pages(lambda c: reader.search_runs(experiments, search, 1000, c), 1000)
            for run in page]


def test_metric_values_and_job_ids(store: TrackingStore, reader: SqlTrackingReader) -> None:
    runs = reader.get_runs([store.lab_runs[0], store.lab_runs[8]])
    first, eighth = runs[store.lab_runs[0]], runs[store.lab_runs[8]]
    assert first["metrics"]["odd"] is None  # NaN
    assert first["job_id"] == 100 and eighth["job_id"] is None
    assert eighth["metrics"]["odd_inf"] == pytest.approx(1.7976931348623157e308)  # MLflow stores inf so
    assert first["run_name"] == "Sweep-0" and first["status"] == "RUNNING" and first["end_time"] is None
    assert first["params"]["lr"] == "0.1" and first["tags"]["team"] == "vision"


def test_cached_pages_follow_every_write(tmp_path: Path) -> None:
    """SQLite answers are reused only until any other connection commits to the store."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("aitip/lab")
    first = client.create_run(experiment, start_time=1).info.run_id
    reader = SqlTrackingReader(uri)
    everything = parse_run_search("", [])
    accurate = parse_run_search("metrics.accuracy > 0.5", [])

    def listed(search: Any) -> list[tuple[str, dict[str, Any]]]:
        return [(run["run_id"], run["metrics"]) for run in reader.search_runs([experiment], search, 10, None)[0]]

    assert listed(everything) == [(first, {})] and listed(everything) == [(first, {})]
    version = reader.store_version()
    assert reader.store_version() == version  # reading changes nothing
    second = client.create_run(experiment, start_time=2).info.run_id
    assert [run_id for run_id, _ in listed(everything)] == [second, first]
    client.log_metric(first, "accuracy", 0.9)
    assert listed(accurate) == [(first, {"accuracy": 0.9})]
    client.log_metric(first, "accuracy", 0.1, step=1)
    assert listed(accurate) == []
    client.delete_run(second)
    assert listed(everything) == [(first, {"accuracy": 0.1})]
    assert reader.project_experiment_ids("lab") == [experiment]
    client.set_experiment_tag(experiment, "aitip.project", "renamed")
    assert reader.project_experiment_ids("lab") == [] and reader.project_experiment_ids("renamed") == [experiment]
    reader.dispose()
    assert SqlTrackingReader(uri, cache_entries=0).store_version() is None


def test_cached_histories_follow_every_write_and_long_ones_are_not_kept(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A metric history read again at the same store version comes from memory; any commit reads it again,
    and an answer over the cached size is read every time."""
    from mlflow.tracking import MlflowClient

    from aitip.experiments import sql_reader

    uri = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("aitip/lab"), start_time=1).info.run_id
    for step in range(3):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    reader = SqlTrackingReader(uri)
    reads: list[int] = []
    original = reader._read_curves
    monkeypatch.setattr(reader, "_read_curves", lambda *args: reads.append(1) or original(*args))

    def steps() -> list[int]:
        return reader.metric_curves([run_id], ["loss"])[(run_id, "loss")].steps.tolist()

    assert steps() == [0, 1, 2] and steps() == [0, 1, 2] and len(reads) == 1
    client.log_metric(run_id, "loss", 0.2, step=3)
    assert steps() == [0, 1, 2, 3] and len(reads) == 2
    monkeypatch.setattr(sql_reader, "CACHED_CURVE_POINTS", 3)
    client.log_metric(run_id, "loss", 0.1, step=4)
    assert steps() == [0, 1, 2, 3, 4] and steps() == [0, 1, 2, 3, 4] and len(reads) == 4
    reader.dispose()


def test_dataset_conditions_are_left_to_mlflow() -> None:
    search = parse_run_search("datasets.name = 'digits'", [])
    assert not search.sql_translatable
    assert parse_run_search("metrics.a > 1", []).sql_translatable


BAD_SEARCHES = [
    ("metrics.accuracy >", [], "filter"),
    ("metrics.accuracy > 'high'", [], "Expected numeric value type for metric"),
    ("params.lr > '0.1'", [], "Invalid comparator '>'"),
    ("metrics.accuracy LIKE '0.%'", [], "filter"),
    ("attributes.nonsense = 'x'", [], "Invalid attribute key"),
    ("bogus.lr = '1'", [], "Invalid entity type"),
    ("params.lr = 0.1", [], "quoted string value"),
    ("metrics.a > 1 OR metrics.b > 1", [], "Invalid clause"),
    ("metrics.a > 1; DROP TABLE runs", [], "filter"),
    ("", ["metrics.accuracy SIDEWAYS"], "order_by"),
    ("", ["metrics.a DESC", "metrics.a ASC"], "same field twice"),
    ("", ["nonsense.x"], "Invalid entity type"),
    ("", ["datasets.name"], "order_by"),
]


@pytest.mark.parametrize(("filter_string", "order_by", "message"), BAD_SEARCHES)
def test_bad_searches_are_refused_with_mlflows_message(filter_string: str, order_by: list[str],
                                                       message: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        parse_run_search(filter_string, order_by)
    assert caught.value.status == 400 and message in caught.value.message


def test_values_are_bound_never_spliced(store: TrackingStore, reader: SqlTrackingReader) -> None:
    hostile = "x' OR '1'='1"
    search = parse_run_search(f"params.lr = \"{hostile}\"", [])
    assert reader.search_runs([store.lab], search, 100, None) == ([], None)


# ----- the service: projects, permissions, run detail, curves, comparison, models -----

@pytest_asyncio.fixture
async def service(store: TrackingStore, tmp_path: Path) -> Any:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    catalog.migrate()
    users = {p.name: DirectoryEntry(p.name, p.groups, p.is_admin) for p in (ANN, VIC, EVE)}
    projects = ProjectService(catalog, FixedDirectory(users, set()))
    for name in ("lab", "other", "legacy"):
        await projects.create(ANN, ProjectCreate(name=name))
    await projects.add_member(ANN, "lab", MemberAdd(user="vic", role=Role.viewer))
    with catalog.session() as session:
        lab = session.query(ProjectRecord).filter_by(name="lab").one()
        other = session.query(ProjectRecord).filter_by(name="other").one()
        for job_id, project in ((100, lab), (101, other)):
            session.add(JobRecord(id=job_id, project_id=project.id, owner="ann", state="succeeded",
                                  notebook_name="train.ipynb", notebook_sha256="0" * 64, kernel="aitip-python",
                                  attempt=1))
    experiments = ExperimentService(catalog, store.uri)
    yield experiments
    experiments.close()
    catalog.dispose()


async def test_experiments_of_a_project_by_tag_or_name(service: ExperimentService, store: TrackingStore) -> None:
    listed = await service.list_experiments(VIC, "lab")
    assert [(e.experiment_id, e.name, e.run_count) for e in listed.experiments] == [
        (store.lab, "aitip/lab", LAB_RUNS - 1), (store.lab_extra, "lab-extra", 4)]
    assert listed.experiments[0].tags == {"aitip.project": "lab", "purpose": "test"}
    legacy = await service.list_experiments(ANN, "legacy", ExperimentListQuery())
    assert [e.experiment_id for e in legacy.experiments] == [store.legacy]
    assert project_of_experiment("aitip/lab", "other") == "other"
    assert project_of_experiment("Default", None) is None


async def test_non_members_learn_nothing(service: ExperimentService, store: TrackingStore) -> None:
    for call in (service.list_experiments(EVE, "lab"), service.list_runs(EVE, "lab", RunListQuery()),
                 service.list_models(EVE, "lab"), service.get_run(EVE, store.lab_runs[0]),
                 service.get_run(VIC, store.other_runs[0]),
                 service.metric_history(VIC, store.other_runs[0], MetricHistoryQuery(key="loss")),
                 service.get_run(ANN, store.default_runs[0]), service.get_run(ANN, "f" * 32)):
        with pytest.raises(NotFound):
            await call


async def test_runs_pages_with_signed_tokens(service: ExperimentService, store: TrackingStore) -> None:
    first = await service.list_runs(VIC, "lab", RunListQuery(max_results=10, order_by=["metrics.accuracy DESC"]))
    assert len(first.runs) == 10 and first.next_page_token
    seen = [r.run_id for r in first.runs]
    token = first.next_page_token
    while token:
        page = await service.list_runs(VIC, "lab", RunListQuery(max_results=10, page_token=token,
                                                                order_by=["metrics.accuracy DESC"]))
        seen += [r.run_id for r in page.runs]
        token = page.next_page_token
    assert len(seen) == len(set(seen)) == LAB_RUNS + 4 - 1
    only_lab = await service.list_runs(VIC, "lab", RunListQuery(experiment_id=store.lab, max_results=1000))
    assert {r.experiment_id for r in only_lab.runs} == {store.lab} and only_lab.next_page_token is None
    with pytest.raises(InvalidPageToken, match="another query"):
        await service.list_runs(VIC, "lab", RunListQuery(page_token=first.next_page_token))
    body, _, signature = first.next_page_token.partition(".")
    for forged in (f"{body[:-2]}xx.{signature}", "not-a-token", f"{body}.", "é.é"):
        with pytest.raises(InvalidPageToken):
            await service.list_runs(VIC, "lab", RunListQuery(page_token=forged, order_by=["metrics.accuracy DESC"]))
    with pytest.raises(NotFound, match="experiment"):
        await service.list_runs(VIC, "lab", RunListQuery(experiment_id=store.other))
    with pytest.raises(InvalidSearch):
        await service.list_runs(VIC, "lab", RunListQuery(filter="metrics.accuracy >"))


async def test_dataset_filters_go_through_mlflow(service: ExperimentService) -> None:
    page = await service.list_runs(VIC, "lab", RunListQuery(filter="datasets.name = 'digits'"))
    assert page.runs == [] and page.next_page_token is None


async def test_one_run_with_artifacts_and_job(service: ExperimentService, store: TrackingStore) -> None:
    run = await service.get_run(VIC, store.lab_runs[0])
    assert run.project == "lab" and run.job is not None and run.job.id == 100 and run.job.state == "succeeded"
    assert {(a.path, a.is_dir) for a in run.artifacts} == {("notebook", True), ("notebook/report.txt", False),
                                                           ("report.txt", False)}
    assert run.metric_keys == ["accuracy", "curve", "loss", "odd", "sparse"]
    assert (await service.get_run(VIC, store.lab_runs[1])).job is None  # job 101 is another project's


async def test_metric_history_is_downsampled(service: ExperimentService, store: TrackingStore) -> None:
    full = await service.metric_history(VIC, store.lab_runs[0], MetricHistoryQuery(key="curve", max_points=5000))
    assert full.total_points == HISTORY_POINTS and len(full.points) == HISTORY_POINTS
    assert full.points[17].value is None  # NaN
    small = await service.metric_history(VIC, store.lab_runs[0], MetricHistoryQuery(key="curve", max_points=200))
    assert small.total_points == HISTORY_POINTS and len(small.points) == 200
    assert (small.points[0].step, small.points[-1].step) == (0, HISTORY_POINTS - 1)
    assert all(p.value is not None for p in small.points)
    with pytest.raises(NotFound, match="no metric"):
        await service.metric_history(VIC, store.lab_runs[0], MetricHistoryQuery(key="nope"))


async def test_compare_runs(service: ExperimentService, store: TrackingStore) -> None:
    a, b, c = store.lab_runs[0], store.lab_runs[1], store.lab_runs[36]  # the last is in lab-extra
    compared = await service.compare_runs(VIC, "lab", CompareQuery(run=[a, b, c], max_points=100))
    assert [r.run_id for r in compared.runs] == [a, b, c]
    assert compared.params["lr"] == {a: "0.1", b: "0.01", c: "0.1"}
    assert compared.params["warmup"] == {a: "0", b: None, c: "0"}
    assert "lr" in compared.differing_params and "warmup" in compared.differing_params
    assert compared.metrics["odd"][a] is None and compared.metrics["loss"][b] == 0.5
    assert set(compared.curves["curve"]) == {a, b}
    assert len(compared.curves["curve"][a]) == 100 and len(compared.curves["curve"][b]) == 50
    only = await service.compare_runs(VIC, "lab", CompareQuery(run=[a, b], key=["loss"]))
    assert list(only.curves) == ["loss"]
    with pytest.raises(NotFound, match=store.other_runs[0]):
        await service.compare_runs(ANN, "lab", CompareQuery(run=[a, store.other_runs[0]]))
    with pytest.raises(InvalidInput, match="more than once"):
        await service.compare_runs(VIC, "lab", CompareQuery(run=[a, a]))


async def test_models_show_only_this_projects_versions(service: ExperimentService, store: TrackingStore) -> None:
    lab = (await service.list_models(VIC, "lab")).models
    assert [m.name for m in lab] == ["digits"]
    digits = lab[0]
    assert digits.description == "digit classifier" and digits.aliases == {"champion": 3}
    assert [(v.version, v.run_id, v.job_id, v.aliases) for v in digits.versions] == [
        (3, store.lab_runs[1], 101, ["champion"]), (1, store.lab_runs[0], 100, [])]
    other = (await service.list_models(ANN, "other")).models
    assert [(m.name, [v.version for v in m.versions], m.aliases) for m in other] == [
        ("digits", [2], {"theirs": 2}), ("other-only", [1], {})]


async def test_the_mlflow_client_reader_agrees(store: TrackingStore, reader: SqlTrackingReader) -> None:
    """The fallback (an MLflow server URL) answers like the SQL reader."""
    fallback = ClientTrackingReader(store.uri)
    assert fallback.project_experiments("lab") == reader.project_experiments("lab")
    experiment_ids = reader.project_experiment_ids("lab")
    assert fallback.run_counts(experiment_ids) == reader.run_counts(experiment_ids)
    assert fallback.project_models(experiment_ids) == reader.project_models(experiment_ids)
    ours = reader.metric_curves([store.lab_runs[0]], ["curve", "loss"])
    theirs = fallback.metric_curves([store.lab_runs[0]], ["curve", "loss"])
    assert ours.keys() == theirs.keys()
    for key, curve in ours.items():
        np.testing.assert_array_equal(curve.steps, theirs[key].steps)
        np.testing.assert_array_equal(curve.values, theirs[key].values)


def test_curves_read_one_by_one_or_in_one_query_agree(store: TrackingStore, reader: SqlTrackingReader,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A few curves are read one indexed query each, many in one query: the same histories either way."""
    runs, keys = [*store.lab_runs, store.lab_runs[0]], ["curve", "loss", "never-logged"]
    one_by_one = reader.metric_curves(runs, keys)
    monkeypatch.setattr(sql_reader, "CURVE_QUERIES", 0)
    together = reader.metric_curves(runs, keys)
    assert one_by_one.keys() == together.keys() and (store.lab_runs[0], "curve") in together
    assert not any(key == "never-logged" for _run, key in together)
    for key, curve in together.items():
        for field in ("steps", "timestamps", "values"):
            np.testing.assert_array_equal(getattr(one_by_one[key], field), getattr(curve, field))


async def test_tracking_off_means_no_experiments(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    catalog.migrate()
    projects = ProjectService(catalog, FixedDirectory({"ann": DirectoryEntry("ann", frozenset(), False)}, set()))
    await projects.create(ANN, ProjectCreate(name="lab"))
    for uri in ("", f"sqlite:///{tmp_path / 'not-yet.sqlite'}"):
        service = ExperimentService(catalog, uri)
        assert (await service.list_experiments(ANN, "lab")).experiments == []
        assert (await service.list_runs(ANN, "lab", RunListQuery())).runs == []
        assert (await service.list_models(ANN, "lab")).models == []
        with pytest.raises(NotFound):
            await service.get_run(ANN, "a" * 32)
    assert not (tmp_path / "not-yet.sqlite").exists()  # reading never creates the store
    catalog.dispose()


# ----- page tokens and downsampling -----

def test_page_tokens_are_signed_and_bound_to_their_query() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue("query-a", 200)
    assert tokens.read(token, "query-a") == 200
    assert "200" not in token.split(".")[1]
    with pytest.raises(InvalidPageToken):
        PageTokens(b"x" * 32).read(token, "query-a")
    with pytest.raises(InvalidPageToken, match="another query"):
        tokens.read(token, "query-b")
    assert isinstance(InvalidPageToken("x"), BadRequest)


def test_lttb_keeps_a_100k_curve_shape_in_1000_points() -> None:
    steps = np.arange(100_000)
    rng = np.random.default_rng(7)
    values = np.sin(steps / 5000) + rng.normal(0, 0.05, steps.size)
    values[31_337] = 9.0  # a spike must survive
    values[77_777] = -9.0
    kept = lttb_indices(steps, values, 1000)
    assert len(kept) == 1000 and kept[0] == 0 and kept[-1] == steps.size - 1
    assert np.all(np.diff(kept) > 0)
    assert 31_337 in kept and 77_777 in kept
    # The downsampled curve follows the original: interpolated back, it stays close everywhere.
    smooth = np.sin(steps / 5000)
    rebuilt = np.interp(steps, steps[kept], smooth[kept])
    assert np.max(np.abs(rebuilt - smooth)) < 0.01
    assert values[kept].max() == 9.0 and values[kept].min() == -9.0


def test_lttb_matches_the_reference_algorithm() -> None:
    rng = np.random.default_rng(3)
    for count, points in ((10_000, 100), (1001, 10), (57, 5), (10, 3)):
        x = np.arange(count, dtype=float) * 3 + 1.7e12
        y = np.cumsum(rng.standard_normal(count))
        assert lttb_indices(x, y, points).tolist() == _reference_lttb(x - x[0], y, points)


def _reference_lttb(x: np.ndarray, y: np.ndarray, points: int) -> list[int]:
    """Steinarsson's algorithm, point by point."""
    every = (len(x) - 2) / (points - 2)
    chosen, a = [0], 0
    for bucket in range(points - 2):
        start, end = int(bucket * every) + 1, int((bucket + 1) * every) + 1
        next_start, next_end = end, min(int((bucket + 2) * every) + 1, len(x))
        if bucket == points - 4:
            next_end = len(x) - 1
        if bucket == points - 3:
            end, next_start, next_end = len(x) - 1, len(x) - 1, len(x)
        cx, cy = x[next_start:next_end].mean(), y[next_start:next_end].mean()
        areas = [abs((x[a] - cx) * (y[j] - y[a]) - (x[a] - x[j]) * (cy - y[a])) for j in range(start, end)]
        a = start + int(np.argmax(areas))
        chosen.append(a)
    return chosen + [len(x) - 1]


def test_short_curves_are_sent_whole_and_bad_sizes_refused() -> None:
    assert lttb_indices(np.arange(5), np.arange(5.0), 10).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        lttb_indices(np.arange(5), np.arange(5.0), 2)
    same_step = Curve(np.zeros(50, dtype=np.int64), np.arange(50, dtype=np.int64) + BASE_TIME,
                      np.sin(np.arange(50.0)))
    points = curve_points(same_step, 10)
    assert len(points) == 10 and points[0]["timestamp"] == BASE_TIME and points[-1]["timestamp"] == BASE_TIME + 49
