"""The serving service's reads of what endpoints did and how callers reach them: metrics (totals and the time
series), samples, Prometheus's text, the Kubernetes manifests, API keys, and the check of each caller of an
endpoint. A part of :class:`.service.ServingService`."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog.base import utcnow
from ..errors import NotFound
from ..identity.principal import Principal
from ..operations.actions import performs
from ..projects.access import authorize
from . import keys as api_keys
from . import remembered, series
from .answers import metric_point, sample_answer, totals
from .models import ApiKey, ApiKeyList, EndpointMetrics, KeyCreate, Manifests, ManifestsQuery, MetricsQuery, \
    SampleList, SamplesQuery
from .tables import ApiKeyRecord, EndpointRecord, MetricPointRecord, SampleRecord

log = logging.getLogger("aitip.serving")

INVOKE = "serving.invoke"
LABEL = "serving.label"  # labels judge a canary: a viewer who may call the endpoint may not skew its accuracy
CALLER_CACHE_SECONDS = 2.0


class Observations:
    """Expects ``self._endpoint``, ``self._in_transaction``, ``self.deployments``, ``self.keys``,
    ``self.recorder`` and ``self._callers`` of the service."""

    deployments: Any
    keys: api_keys.KeyCache
    recorder: series.SeriesRecorder
    _callers: dict[tuple[str, str], float]
    _endpoint: Any
    _in_transaction: Any
    _signed_in: Any
    catalog: Any

    # ----- metrics and samples -----

    @performs
    async def metrics(self, principal: Principal | None, project: str, endpoint: str, query: MetricsQuery, *,
                      action: str) -> EndpointMetrics:
        principal = self._signed_in(principal)
        since = datetime.now(timezone.utc) - timedelta(minutes=query.minutes)

        def read(session: Session) -> EndpointMetrics:
            _, found = self._endpoint(session, principal, action, project, endpoint)
            statement = select(MetricPointRecord).where(MetricPointRecord.endpoint_id == found.id,
                                                        MetricPointRecord.at >= since)
            if query.version is not None:
                statement = statement.where(MetricPointRecord.version == query.version)
            points = session.scalars(statement.order_by(MetricPointRecord.at, MetricPointRecord.version)).all()
            router = self.deployments.router(project, endpoint)
            return EndpointMetrics(endpoint=endpoint, since=datetime.fromtimestamp(
                router.metrics.since if router is not None else time.time(), timezone.utc),
                totals=totals(router, query.version), series=[metric_point(point) for point in points])

        return await self._in_transaction(read)

    @performs
    async def samples(self, principal: Principal | None, project: str, endpoint: str, query: SamplesQuery, *,
                      action: str) -> SampleList:
        principal = self._signed_in(principal)
        await self.flush()

        def read(session: Session) -> SampleList:
            _, found = self._endpoint(session, principal, action, project, endpoint)
            statement = select(SampleRecord).where(SampleRecord.endpoint_id == found.id)
            if query.version is not None:
                statement = statement.where(SampleRecord.version == query.version)
            rows = session.scalars(statement.order_by(SampleRecord.id.desc()).limit(query.limit)).all()
            return SampleList(samples=[sample_answer(row) for row in rows])

        return await self._in_transaction(read)

    async def prometheus(self, principal: Principal | None, project: str, *, action: str) -> str:
        """The project's endpoints' metrics in Prometheus's text format."""
        from .metrics import prometheus_text

        principal = self._signed_in(principal)

        def read(session: Session) -> list[str]:
            project_record, _ = authorize(session, principal, action, project)
            return list(session.scalars(select(EndpointRecord.name).where(
                EndpointRecord.project_id == project_record.id)))

        names = await self._in_transaction(read)
        routers = [router for name in names if (router := self.deployments.router(project, name)) is not None]
        in_flight: dict[tuple[str, str, int], int] = {}
        for router in routers:
            in_flight.update(router.in_flight())
        return prometheus_text([router.metrics for router in routers], in_flight)

    async def flush(self) -> None:
        """Write the routers' metric deltas and sampled requests into the catalog now."""
        routers = list(self.deployments.routers.values())
        points = self.recorder.points(routers, time.time())
        kept = [(router.endpoint_id, router.sampler.take()) for router in routers]
        kept = [(endpoint_id, entries) for endpoint_id, entries in kept if entries]
        answers = [(router.endpoint_id, *router.answer_changes()) for router in routers]
        answers = [(endpoint_id, unsaved, scored) for endpoint_id, unsaved, scored in answers if unsaved or scored]
        if not points and not kept and not answers:
            return

        def write(session: Session) -> None:
            live = set(session.scalars(select(EndpointRecord.id).where(EndpointRecord.id.in_(
                {point.endpoint_id for point in points} | {e for e, _ in kept} | {e for e, _, _ in answers}))))
            session.add_all([point for point in points if point.endpoint_id in live])
            for endpoint_id, entries in kept:
                if endpoint_id in live:
                    session.add_all(series.samples(endpoint_id, entries))
                    session.flush()
                    series.prune_samples(session, endpoint_id)
            for endpoint_id, unsaved, scored in answers:
                if endpoint_id in live:
                    remembered.save(session, endpoint_id, unsaved, scored)

        await self._in_transaction(write)

    async def _flush_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:  # the next interval writes what this one could not
                log.exception("serving: writing metrics failed")

    # ----- Kubernetes -----

    @performs
    async def manifests(self, principal: Principal | None, project: str, endpoint: str, query: ManifestsQuery, *,
                        action: str) -> Manifests:
        """The endpoint as Kubernetes manifests (Deployments, Services, HPAs; or a KServe InferenceService),
        validated offline."""
        from . import kubernetes

        principal = self._signed_in(principal)

        def read(session: Session) -> kubernetes.EndpointSpec:
            _, found = self._endpoint(session, principal, action, project, endpoint)
            settings = found.settings
            scaling, resources = settings["scaling"], settings["resources"]
            variants = tuple(kubernetes.VariantSpec(
                version=variant.version, weight=variant.weight, shadow=variant.version == found.shadow_version,
                replicas_min=scaling["replicas_min"], replicas_max=scaling["replicas_max"], cpu=resources["cpu"],
                memory=resources["memory"], gpus=resources["gpus"], backend=settings["backend"])
                for variant in found.variants)
            return kubernetes.EndpointSpec(
                project=project, endpoint=endpoint, model=found.model, variants=variants, image=query.image,
                namespace=query.namespace, max_batch_size=settings["max_batch_size"],
                max_batch_wait_ms=settings["max_batch_wait_ms"],
                target_concurrency=max(1, round(scaling["target_concurrency"])))

        spec = await self._in_transaction(read)
        try:
            rendered = kubernetes.render(spec, kserve=query.kserve)
        except ValueError as error:
            from ..errors import InvalidInput

            raise InvalidInput(str(error), code="manifests_impossible") from None
        problems = await asyncio.to_thread(kubernetes.validate, rendered)
        return Manifests(yaml=kubernetes.to_yaml(rendered), manifests=rendered, problems=problems)

    # ----- API keys -----

    @performs
    async def create_key(self, principal: Principal | None, project: str, endpoint: str, body: KeyCreate, *,
                         action: str) -> ApiKey:
        principal = self._signed_in(principal)
        secret, prefix, digest = api_keys.new_key()

        def work(session: Session) -> ApiKey:
            _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
            key = ApiKeyRecord(endpoint_id=found.id, name=body.name, prefix=prefix, secret_sha256=digest,
                               created_by=principal.name)
            session.add(key)
            session.flush()
            record(session, principal.name, action, f"endpoint:{project}/{endpoint}",
                   {"api_key": prefix, "name": body.name})
            self.keys.add(prefix, found.id, digest)
            return ApiKey.model_validate(key, from_attributes=True).model_copy(update={"secret": secret})

        return await self._in_transaction(work)

    @performs
    async def list_keys(self, principal: Principal | None, project: str, endpoint: str, *,
                        action: str) -> ApiKeyList:
        principal = self._signed_in(principal)

        def read(session: Session) -> ApiKeyList:
            _, found = self._endpoint(session, principal, action, project, endpoint)
            rows = session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.endpoint_id == found.id)
                                   .order_by(ApiKeyRecord.id)).all()
            return ApiKeyList(keys=[ApiKey.model_validate(row, from_attributes=True) for row in rows])

        return await self._in_transaction(read)

    @performs
    async def revoke_key(self, principal: Principal | None, project: str, endpoint: str, key_id: int, *,
                         action: str) -> ApiKey:
        principal = self._signed_in(principal)

        def work(session: Session) -> ApiKey:
            _, found = self._endpoint(session, principal, action, project, endpoint, writing=True)
            key = session.scalar(select(ApiKeyRecord).where(ApiKeyRecord.id == key_id,
                                                            ApiKeyRecord.endpoint_id == found.id))
            if key is None:
                raise NotFound("endpoint {endpoint!r} has no API key {key_id}", endpoint=endpoint, key_id=key_id)
            if key.revoked_at is None:
                key.revoked_at = utcnow()
                record(session, principal.name, action, f"endpoint:{project}/{endpoint}", {"revoked": key.prefix})
            self.keys.drop(key.prefix)
            return ApiKey.model_validate(key, from_attributes=True)

        return await self._in_transaction(work)

    async def load_keys(self) -> None:
        def read(session: Session) -> list[tuple[str, int, str]]:
            return [(row.prefix, row.endpoint_id, row.secret_sha256) for row in session.scalars(
                select(ApiKeyRecord).where(ApiKeyRecord.revoked_at.is_(None)))]

        self.keys.load(await self._in_transaction(read))

    # ----- callers of an endpoint -----

    def key_allows(self, key: str, endpoint_id: int) -> bool:
        return self.keys.endpoint_of(key) == endpoint_id

    async def check_caller(self, principal: Principal, project: str, endpoint: str, action: str = INVOKE) -> None:
        """A signed-in caller may invoke the endpoint (``serving.invoke`` in its project), or send its labels
        (``serving.label``); remembered briefly."""
        cache_key = (f"{principal.name}\0{principal.job_id}\0{principal.project_scope}\0{action}",
                     f"{project}/{endpoint}")
        if self._callers.get(cache_key, 0.0) > time.monotonic():
            return

        def check(session: Session) -> None:
            self._endpoint(session, principal, action, project, endpoint)

        await self._in_transaction(check)
        if len(self._callers) > 10_000:
            self._callers.clear()
        self._callers[cache_key] = time.monotonic() + CALLER_CACHE_SECONDS
