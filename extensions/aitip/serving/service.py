"""Endpoints of a project: deploying registered model versions (one call), splitting traffic between them,
scaling, API keys, metrics and samples, and the Kubernetes manifests of an endpoint. The service checks the
caller and keeps the catalog; :mod:`.deployments` runs the versions on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..errors import Conflict, InvalidInput, NotFound
from ..identity.principal import Principal
from ..operations.actions import performs
from ..projects.access import authorize, refuse_if_archived
from ..settings import SERVING_METRICS_SECONDS
from . import keys as api_keys
from . import remembered, series
from .answers import endpoint_answer
from .deployments import LocalDeployments
from .models import (
    Endpoint,
    EndpointDeploy,
    EndpointList,
    Mode,
    ScalingSet,
    TrafficSet,
    VariantAdd,
    VariantState,
)
from .observations import Observations
from .runtime import StartFailed
from .tables import ApiKeyRecord, EndpointRecord, VariantRecord

log = logging.getLogger("aitip.serving")


class ServingService(Observations, CatalogService):
    def __init__(self, catalog: Any, experiments: Any, deployments: LocalDeployments, *,
                 base_path: str = "/services/aitip/", flush_interval: float = SERVING_METRICS_SECONDS) -> None:
        super().__init__(catalog)
        self.experiments = experiments
        self.deployments = deployments
        self.base_path = base_path
        self.flush_interval = flush_interval
        self.keys = api_keys.KeyCache()
        self.recorder = series.SeriesRecorder()
        self._callers: dict[tuple[str, str], float] = {}
        self._flusher: asyncio.Task[None] | None = None

    # ----- start and stop -----

    async def start(self) -> None:
        """Load the API keys and start every local version that served when the platform stopped."""
        await self.load_keys()

        def read(session: Session) -> list[tuple[str, str, int, str, dict[str, Any], list[tuple[int, str]],
                                                  dict[int, int], int | None]]:
            found = session.scalars(select(EndpointRecord).where(EndpointRecord.mode == Mode.local.value)).all()
            return [(e.project.name, e.name, e.id, e.model, dict(e.settings),
                     [(v.version, v.created_by) for v in e.variants
                      if v.state in (VariantState.serving.value, VariantState.starting.value)],
                     {v.version: v.weight for v in e.variants}, e.shadow_version) for e in found]

        for project, name, endpoint_id, model, settings, versions, weights, shadow in \
                await self._in_transaction(read):
            router = self.deployments.ensure_router(project, name, endpoint_id, settings)
            for version, owner in versions:
                try:
                    await self.deployments.start(router, model=model, version=version, owner_name=owner,
                                                 settings=settings)
                except StartFailed as error:
                    log.error("serving %s/%s: version %d did not start again: %s", project, name, version, error)
            router.route(weights, shadow)
        await self._recall_answers()
        self._flusher = asyncio.create_task(self._flush_forever(self.flush_interval))

    async def _recall_answers(self) -> None:
        """The answers still awaiting their labels when the platform stopped (or was killed: those of the last
        interval before are lost), back into their endpoints' routers."""
        routers = list(self.deployments.routers.values())
        kept = await self._in_transaction(lambda s: {router.endpoint_id: remembered.load(s, router.endpoint_id)
                                                     for router in routers})
        for router in routers:
            if kept.get(router.endpoint_id):
                router.recall(kept[router.endpoint_id])

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(BaseException):
                await self._flusher
            self._flusher = None
        with contextlib.suppress(Exception):
            await self.flush()
        await self.deployments.close()

    # ----- reads -----

    @performs
    async def list(self, principal: Principal | None, project: str, *, action: str) -> EndpointList:
        principal = self._signed_in(principal)

        def read(session: Session) -> EndpointList:
            project_record, _ = authorize(session, principal, action, project)
            found = session.scalars(select(EndpointRecord).where(EndpointRecord.project_id == project_record.id)
                                    .order_by(EndpointRecord.name)).all()
            return EndpointList(endpoints=[self._answer(endpoint) for endpoint in found])

        return await self._in_transaction(read)

    @performs
    async def get(self, principal: Principal | None, project: str, endpoint: str, *, action: str) -> Endpoint:
        principal = self._signed_in(principal)

        def read(session: Session) -> Endpoint:
            return self._answer(self._endpoint(session, principal, action, project, endpoint)[1])

        return await self._in_transaction(read)

    def _answer(self, endpoint: EndpointRecord) -> Endpoint:
        router = self.deployments.router(endpoint.project.name, endpoint.name)
        return endpoint_answer(endpoint, router, self.base_path)

    @staticmethod
    def _endpoint(session: Session, principal: Principal, action: str, project: str, endpoint: str,
                  *, writing: bool = False) -> tuple[Any, EndpointRecord]:
        project_record, _ = authorize(session, principal, action, project)
        if writing:
            refuse_if_archived(project_record)
        found = session.scalar(select(EndpointRecord).where(EndpointRecord.project_id == project_record.id,
                                                            EndpointRecord.name == endpoint))
        if found is None:
            raise NotFound("project {project!r} has no endpoint {endpoint!r}", project=project, endpoint=endpoint)
        return project_record, found

    async def _check_version(self, project: str, model: str, version: int) -> str | None:
        """The run of the project's model version (404 naming the versions it has otherwise)."""
        registered = await asyncio.to_thread(self.experiments.project_model, project, model)
        for entry in registered.versions:
            if entry.version == version:
                return entry.run_id
        have = ", ".join(str(entry.version) for entry in registered.versions) or "none"
        raise NotFound("model {model!r} has no version {version} in project {project!r} (it has: {have})",
                       code="unknown_model_version", model=model, version=version, project=project, have=have)

    # ----- deploying -----

    @performs
    async def deploy(self, principal: Principal | None, project: str, body: EndpointDeploy, *,
                     action: str) -> Endpoint:
        """Deploy a model version as a new endpoint taking all its traffic; answers once it serves (or 422 with
        the reason its model did not load, and nothing is kept)."""
        principal = self._signed_in(principal)
        settings = body.settings.model_dump(mode="json")

        def check(session: Session) -> None:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)

        await self._in_transaction(check)
        run_id = await self._check_version(project, body.model, body.version)
        state = VariantState.serving.value if body.mode is Mode.local else VariantState.stopped.value

        def create(session: Session) -> int:
            project_record, _ = authorize(session, principal, action, project)
            if session.scalar(select(EndpointRecord.id).where(EndpointRecord.project_id == project_record.id,
                                                              EndpointRecord.name == body.name)) is not None:
                raise Conflict("project {project!r} already has an endpoint {name!r}; add a version to it (POST "
                               ".../versions) or choose another name", code="endpoint_exists",
                               project=project, name=body.name)
            endpoint = EndpointRecord(project_id=project_record.id, name=body.name, model=body.model,
                                      mode=body.mode.value, settings=settings, created_by=principal.name)
            endpoint.variants.append(VariantRecord(version=body.version, weight=100, run_id=run_id,
                                                   state=VariantState.starting.value, created_by=principal.name))
            session.add(endpoint)
            session.flush()
            return endpoint.id

        async with self.deployments.lock(project, body.name):
            endpoint_id = await self._in_transaction(create)
            if body.mode is Mode.local:
                router = self.deployments.ensure_router(project, body.name, endpoint_id, settings)
                try:
                    await self.deployments.start(router, model=body.model, version=body.version,
                                                 owner_name=principal.name, settings=settings)
                except StartFailed as error:
                    await self.deployments.remove(project, body.name)
                    await self._in_transaction(lambda session: session.execute(
                        EndpointRecord.__table__.delete().where(EndpointRecord.id == endpoint_id)))
                    raise InvalidInput("{model} version {version} cannot be served: {error}",
                                       code="model_load_failed",
                                            model=body.model, version=body.version, error=error) from None
                router.route({body.version: 100}, None)

            def done(session: Session) -> Endpoint:
                endpoint = session.get(EndpointRecord, endpoint_id)
                assert endpoint is not None
                endpoint.variants[0].state = state
                record(session, principal.name, action, f"endpoint:{project}/{body.name}",
                       {"model": body.model, "version": body.version, "mode": body.mode.value})
                return self._answer(endpoint)

            return await self._in_transaction(done)

    @performs
    async def add_version(self, principal: Principal | None, project: str, endpoint: str, body: VariantAdd, *,
                          action: str) -> Endpoint:
        """Another version beside the serving ones: a canary with ``weight`` percent (taken from the others in
        proportion) or a shadow. A version that does not load is refused with the reason; the others keep
        serving as they were."""
        principal = self._signed_in(principal)

        def check(session: Session) -> tuple[int, str, str, dict[str, Any]]:
            _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
            if any(variant.version == body.version for variant in found.variants):
                raise Conflict("version {version} is already deployed on {endpoint!r}; change its weight with PUT "
                               ".../traffic", code="version_deployed", version=body.version, endpoint=endpoint)
            return found.id, found.model, found.mode, dict(found.settings)

        endpoint_id, model, mode, settings = await self._in_transaction(check)
        run_id = await self._check_version(project, model, body.version)
        async with self.deployments.lock(project, endpoint):
            if mode == Mode.local.value:
                router = self.deployments.ensure_router(project, endpoint, endpoint_id, settings)
                try:
                    await self.deployments.start(router, model=model, version=body.version,
                                                 owner_name=principal.name, settings=settings)
                except StartFailed as error:
                    await self.deployments.stop(project, endpoint, body.version, 0)
                    raise InvalidInput("{model} version {version} cannot be served: {error}; the endpoint keeps "
                                       "serving as it was", code="model_load_failed",
                                       model=model, version=body.version, error=error) from None

            def add(session: Session) -> Endpoint:
                _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
                weights = _rescaled({v.version: v.weight for v in found.variants}, body.weight)
                for variant in found.variants:
                    variant.weight = weights[variant.version]
                    variant.updated_at = utcnow()
                found.variants.append(VariantRecord(
                    version=body.version, weight=body.weight, run_id=run_id, created_by=principal.name,
                    state=VariantState.serving.value if mode == Mode.local.value else VariantState.stopped.value))
                if body.shadow:
                    found.shadow_version = body.version
                found.updated_at = utcnow()
                session.flush()
                self._route(found)
                record(session, principal.name, action, f"endpoint:{project}/{endpoint}",
                       {"version": body.version, "weight": body.weight, "shadow": body.shadow})
                return self._answer(found)

            return await self._in_transaction(add)

    def _route(self, endpoint: EndpointRecord) -> None:
        router = self.deployments.router(endpoint.project.name, endpoint.name)
        if router is not None:
            router.route({variant.version: variant.weight for variant in endpoint.variants}, endpoint.shadow_version)

    @performs
    async def set_traffic(self, principal: Principal | None, project: str, endpoint: str, body: TrafficSet, *,
                          action: str) -> Endpoint:
        """New weights, in effect for the next request; requests in flight finish where they are."""
        principal = self._signed_in(principal)
        weights = {int(version): int(weight) for version, weight in body.weights.items()}

        def work(session: Session) -> Endpoint:
            _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
            deployed = {variant.version: variant for variant in found.variants}
            unknown = sorted(set(weights) - set(deployed))
            if unknown:
                raise NotFound("endpoint {endpoint!r} has no deployed version {versions} (deployed: {deployed})",
                               code="version_not_deployed", endpoint=endpoint, versions=", ".join(map(str, unknown)),
                               deployed=", ".join(map(str, sorted(deployed))))
            if body.shadow is not None:
                if body.shadow not in deployed:
                    raise NotFound("shadow version {shadow} is not deployed on {endpoint!r}",
                                   code="version_not_deployed", shadow=body.shadow, endpoint=endpoint)
                if weights.get(body.shadow):
                    raise InvalidInput("version {shadow} cannot both take {weights} % and shadow",
                                       code="shadow_with_weight",
                                       shadow=body.shadow, weights=weights[body.shadow])
            for version, variant in deployed.items():
                variant.weight = weights.get(version, 0)
                variant.updated_at = utcnow()
            found.shadow_version = body.shadow
            found.updated_at = utcnow()
            session.flush()
            self._route(found)
            record(session, principal.name, action, f"endpoint:{project}/{endpoint}",
                   {"weights": weights, "shadow": body.shadow})
            return self._answer(found)

        return await self._in_transaction(work)

    @performs
    async def remove_version(self, principal: Principal | None, project: str, endpoint: str, version: int, *,
                             action: str) -> Endpoint:
        """Undeploy a version that takes no traffic: its replicas finish their requests, then stop."""
        principal = self._signed_in(principal)

        def check(session: Session) -> None:
            _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
            variant = next((v for v in found.variants if v.version == version), None)
            if variant is None:
                raise NotFound("version {version} is not deployed on {endpoint!r}", code="version_not_deployed",
                               version=version, endpoint=endpoint)
            if len(found.variants) == 1:
                raise Conflict("version {version} is the endpoint's only version; delete the endpoint instead",
                               code="last_version", version=version)
            if variant.weight:
                raise Conflict("version {version} still takes {weight} % of the traffic; shift it to the other "
                               "versions first (PUT .../traffic)", code="version_takes_traffic",
                               version=version, weight=variant.weight)

        await self._in_transaction(check)
        async with self.deployments.lock(project, endpoint):
            def remove(session: Session) -> Endpoint:
                _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
                for variant in list(found.variants):
                    if variant.version == version:
                        found.variants.remove(variant)
                if found.shadow_version == version:
                    found.shadow_version = None
                found.updated_at = utcnow()
                session.flush()
                self._route(found)
                record(session, principal.name, action, f"endpoint:{project}/{endpoint}",
                       {"removed_version": version})
                return self._answer(found)

            answer = await self._in_transaction(remove)
            await self.deployments.stop(project, endpoint, version)
            return answer.model_copy(update={"variants": [v for v in answer.variants if v.version != version]})

    @performs
    async def delete(self, principal: Principal | None, project: str, endpoint: str, *, action: str) -> None:
        principal = self._signed_in(principal)

        def work(session: Session) -> int:
            _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
            for key in session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.endpoint_id == found.id)):
                self.keys.drop(key.prefix)
            session.delete(found)
            record(session, principal.name, action, f"endpoint:{project}/{endpoint}", {"deleted": True})
            return found.id

        async with self.deployments.lock(project, endpoint):
            endpoint_id = await self._in_transaction(work)
            await self.deployments.remove(project, endpoint)
            self.recorder.forget(endpoint_id)

    @performs
    async def set_scaling(self, principal: Principal | None, project: str, endpoint: str, body: ScalingSet, *,
                          action: str) -> Endpoint:
        principal = self._signed_in(principal)

        def work(session: Session) -> Endpoint:
            _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
            found.settings = dict(found.settings, scaling=body.model_dump(mode="json"))
            found.updated_at = utcnow()
            router = self.deployments.router(project, endpoint)
            for process in (router.variants.values() if router is not None else ()):
                process.set_bounds(body.replicas_min, body.replicas_max, body.target_concurrency,
                                   body.scale_down_seconds)
            record(session, principal.name, action, f"endpoint:{project}/{endpoint}",
                   {"scaling": body.model_dump(mode="json")})
            return self._answer(found)

        return await self._in_transaction(work)


def _rescaled(weights: dict[int, int], taken: int) -> dict[int, int]:
    """The versions' weights once a new version takes ``taken`` percent: each gives it up in proportion
    (largest remainders, so that they still sum to 100 with the new one)."""
    if not taken:
        return dict(weights)
    total = sum(weights.values())
    if not total:
        return dict(weights)
    share = {version: weight * (100 - taken) / total for version, weight in weights.items()}
    result = {version: int(value) for version, value in share.items()}
    left = 100 - taken - sum(result.values())
    for version in sorted(share, key=lambda v: share[v] - result[v], reverse=True)[:left]:
        result[version] += 1
    return result
