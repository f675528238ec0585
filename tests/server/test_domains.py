"""The domains set up, started and stopped around a context as ``aitip worker`` does it: every part is
stopped even when one fails, and the catalog is closed last."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aitip.catalog import Catalog
from aitip.identity.directory import IdentityProviderDirectory
from aitip.server.context import PlatformContext
from aitip.server.domains import setup_domains, stop_domains
from aitip.server.worker_process import worker_config

pytestmark = pytest.mark.asyncio


async def test_shutdown_stops_every_part_even_when_one_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("AITIP_HOME", str(tmp_path))
    config = worker_config(slots=1, pool=0, tracking_uri=None, lease_seconds=None, heartbeat_seconds=None,
                           api_url="")
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    catalog.migrate()
    context = PlatformContext(mode="worker", directory=IdentityProviderDirectory(parent=config), max_body_bytes=1,
                              catalog=catalog)
    setup_domains(context, config)
    assert context.worker is not None and context.datasets is not None
    assert context.jobs.inputs is context.worker.inputs  # the datasets domain plugged its inputs into jobs
    assert context.jobs.notices is not None  # job ends are queued for the webhooks domain

    done: list[str] = []

    async def stuck_worker() -> None:
        raise RuntimeError("the worker would not stop")

    close_datasets = context.datasets.close

    async def close_and_note() -> None:
        await close_datasets()
        done.append("datasets")

    dispose = catalog.dispose
    context.worker.stop = stuck_worker
    context.datasets.close = close_and_note
    catalog.dispose = lambda: (dispose(), done.append("catalog"))  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        await stop_domains(context, logging.getLogger("aitip.test"))
    assert done == ["datasets", "catalog"]
    assert "stopping the job worker failed; stopping the rest" in caplog.text
