"""The GPU count the job scheduler uses: $AITIP_GPUS, else NVML, else 0."""

from __future__ import annotations

from pathlib import Path

import pynvml
import pytest
from aitip.resources import inventory
from aitip.resources.gpus import gpu_inventory

from .conftest import GIB, FakeNvml

CASES = [
    # (AITIP_GPUS, NVML init error or None, expected count, expected source)
    (None, None, 2, "nvml"),
    ("3", None, 3, "config"),
    ("0", None, 0, "config"),
    ("-1", None, 0, "config"),
    ("4", pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, 4, "config"),
    (None, pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, 0, "none"),
    (None, pynvml.NVML_ERROR_DRIVER_NOT_LOADED, 0, "none"),
]


@pytest.mark.parametrize(("configured", "init_error", "count", "source"), CASES)
def test_gpu_count(fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch, configured: str | None,
                   init_error: int | None, count: int, source: str) -> None:
    if configured is not None:
        monkeypatch.setenv("AITIP_GPUS", configured)
    fake_nvml.init_error = init_error
    assert inventory.gpu_count() == count
    found = gpu_inventory()
    assert (found.count, found.source) == (count, source)
    if source == "config":
        assert fake_nvml.calls["nvmlInit"] == 0, "configuration wins without touching NVML"
    assert fake_nvml.initialized == 0, "every NVML init is shut down again"


def test_inventory_lists_the_devices(fake_nvml: FakeNvml) -> None:
    found = gpu_inventory()
    assert found.to_json() == {
        "count": 2, "source": "nvml", "reason": None,
        "devices": [
            {"index": 0, "uuid": "GPU-aaaaaaaa-0000", "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 80 * GIB},
            {"index": 1, "uuid": "GPU-bbbbbbbb-1111", "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 80 * GIB},
        ],
    }


def test_no_gpu_on_this_machine_counts_zero(real_nvml_without_gpu: None) -> None:
    found = gpu_inventory()
    assert (inventory.gpu_count(), found.count, found.source) == (0, 0, "none")
    assert found.reason == "no GPU: NVML unavailable (NVML Shared Library Not Found)"


def test_a_malformed_setting_says_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_GPUS", "two")
    with pytest.raises(ValueError, match=r"\$AITIP_GPUS must be a whole number of GPUs, got 'two'"):
        inventory.gpu_count()


def test_the_job_worker_offers_the_nvml_gpus(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    """A worker left to count its GPUs (-1) offers what the resources domain counts when it is set up."""
    from aitip.catalog import Catalog
    from aitip.jobs.events import JobSignals
    from aitip.jobs.executor import LocalExecutor
    from aitip.jobs.notebook_store import NotebookStore
    from aitip.jobs.tracking import Tracker
    from aitip.identity.directory import IdentityProviderDirectory
    from aitip.jobs.worker import JobWorker
    from aitip.resources.domain import ResourcesDomain
    from aitip.server.context import PlatformContext

    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    worker = JobWorker(catalog, LocalExecutor(max_concurrent_jobs=1, pool_sizes={}), NotebookStore(tmp_path / "nb"),
                       JobSignals(), Tracker(), tmp_path / "jobs")
    assert worker.gpu_count == -1 and worker._free_gpus == []
    context = PlatformContext(mode="worker", directory=IdentityProviderDirectory(), max_body_bytes=1, catalog=catalog)
    context.provide("worker", worker)
    ResourcesDomain().setup(context, None)
    assert worker.gpu_count == 2 and worker._free_gpus == [0, 1]
    catalog.dispose()
