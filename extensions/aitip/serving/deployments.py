"""What runs on this machine for the local endpoints: each version's files staged read-only for its owner, its
host process and replicas (:mod:`.runtime`), and each endpoint's router. The service decides; this carries
it out, and starts every serving version again when the platform starts."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from .router import EndpointRouter, Sampler
from .runtime import Owner, StartFailed, VariantProcess

log = logging.getLogger("aitip.serving")


class LocalDeployments:
    def __init__(self, root: Path, experiments: Any, accounts: Any = None) -> None:
        self.root = root
        self.experiments = experiments
        self.accounts = accounts  # aitip.isolation.accounts.Accounts where users have accounts of their own
        self.routers: dict[tuple[str, str], EndpointRouter] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def lock(self, project: str, endpoint: str) -> asyncio.Lock:
        return self._locks.setdefault((project, endpoint), asyncio.Lock())

    def router(self, project: str, endpoint: str) -> EndpointRouter | None:
        return self.routers.get((project, endpoint))

    def ensure_router(self, project: str, endpoint: str, endpoint_id: int, settings: dict[str, Any]) -> EndpointRouter:
        router = self.routers.get((project, endpoint))
        if router is None:
            router = self.routers[(project, endpoint)] = EndpointRouter(
                project, endpoint, endpoint_id, sticky_header=settings["sticky_header"],
                sampler=Sampler(settings["sample_rate"], frozenset(settings["mask_fields"])))
        else:
            router.sticky_header = settings["sticky_header"]
            router.sampler.rate, router.sampler.mask = settings["sample_rate"], frozenset(settings["mask_fields"])
        return router

    def _owner(self, user: str) -> Owner:
        if self.accounts is None:
            return Owner()
        account = self.accounts.ensure(user)
        return Owner(account.uid, account.gid, account.groups, str(account.home))

    def _stage(self, project: str, model: str, version: int, directory: Path, owner: Owner) -> Path:
        """The version's files, copied from the registry into the platform's directory, readable (not
        writable) by the owner's group."""
        target = directory / "model"
        if target.exists():
            shutil.rmtree(target)
        staging = directory / "staging"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o700)
        found = self.experiments.model_version_files(project, model, version, staging)
        found.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        for path in [target, *target.rglob("*")]:
            if owner.gid is not None:
                os.chown(path, 0, owner.gid, follow_symlinks=False)
            if not path.is_symlink():
                os.chmod(path, 0o750 if path.is_dir() else 0o640)
        return target

    async def start(self, router: EndpointRouter, *, model: str, version: int, owner_name: str,
                    settings: dict[str, Any]) -> VariantProcess:
        """Stage and start one version (it takes no traffic until the router's weights say so)."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        owner = await asyncio.to_thread(self._owner, owner_name)
        directory = self.root / f"{router.endpoint_id}-v{version}"
        directory.mkdir(mode=0o700, exist_ok=True)
        if owner.gid is not None:
            os.chown(directory, 0, owner.gid)
            os.chmod(directory, 0o750)
        try:
            model_dir = await asyncio.to_thread(self._stage, router.project, model, version, directory, owner)
        except Exception as error:
            raise StartFailed(f"the files of {model} version {version} cannot be fetched: {error}") from None
        scaling = settings["scaling"]
        process = VariantProcess(
            key=directory.name, directory=directory, owner=owner,
            spec={"model_dir": str(model_dir), "name": router.endpoint, "model_name": model, "version": version,
                  "backend": settings["backend"], "max_batch_size": settings["max_batch_size"],
                  "max_batch_wait_ms": settings["max_batch_wait_ms"]},
            replicas_min=scaling["replicas_min"], replicas_max=scaling["replicas_max"],
            target_concurrency=scaling["target_concurrency"],
            scale_down_seconds=scaling.get("scale_down_seconds", 30.0))
        await process.start()
        old = router.variants.get(version)
        router.variants[version] = process
        if old is not None:
            await old.stop()
        return process

    async def stop(self, project: str, endpoint: str, version: int, drain_seconds: float = 10.0) -> None:
        router = self.routers.get((project, endpoint))
        if router is None or version not in router.variants:
            return
        process = router.variants[version]
        await process.stop(drain_seconds)  # out of routing first: pick() skips draining replicas
        router.variants.pop(version, None)
        shutil.rmtree(process.directory, ignore_errors=True)

    async def remove(self, project: str, endpoint: str) -> None:
        router = self.routers.get((project, endpoint))
        if router is None:
            return
        for version in list(router.variants):
            await self.stop(project, endpoint, version)
        self.routers.pop((project, endpoint), None)

    async def close(self) -> None:
        for router in list(self.routers.values()):
            for process in list(router.variants.values()):
                try:
                    await process.stop(drain_seconds=2.0)
                except Exception:  # every version is stopped even when one fails
                    log.exception("serving: stopping %s failed", process.key)
        self.routers.clear()
