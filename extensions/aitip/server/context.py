"""What the extension hands its handlers: the mode, the relay's settings, and the services and parts the
domains put in (:mod:`aitip.domains`), read as attributes (``context.jobs``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..domains.registry import context_names
from ..identity.directory import Directory

if TYPE_CHECKING:  # what the built-in domains provide, for type checkers; the context holds any domain's
    from ..catalog import Catalog
    from ..datasets.annotations import AnnotationService
    from ..datasets.registrations import RegistrationService
    from ..datasets.service import DatasetService
    from ..experiments.gateway import TrackingGateway
    from ..experiments.job_spools import JobSpools
    from ..experiments.service import ExperimentService
    from ..jobs.service import JobService
    from ..jobs.sweeps import SweepService
    from ..jobs.worker import JobWorker
    from ..projects.service import ProjectService
    from ..resources.monitor import GpuMonitor
    from ..resources.service import ResourceService
    from ..webhooks.delivery import WebhookDispatcher
    from ..webhooks.service import WebhookService


@dataclass
class PlatformContext:
    mode: str
    directory: Directory
    max_body_bytes: int
    discard_body_bytes: int = 1 << 30
    catalog: Catalog | None = None
    platform_url: str = ""
    platform_token: str = ""
    relay_timeout: float = 60.0
    # Services and parts by name, as the domains set them up; absent ones read as None.
    provided: dict[str, Any] = field(default_factory=dict)

    if TYPE_CHECKING:
        projects: ProjectService | None
        jobs: JobService | None
        worker: JobWorker | None
        sweeps: SweepService | None
        experiments: ExperimentService | None
        datasets: DatasetService | None
        annotations: AnnotationService | None
        registrations: RegistrationService | None
        resources: ResourceService | None
        webhooks: WebhookService | None
        webhook_dispatcher: WebhookDispatcher | None
        spools: JobSpools | None
        tracking_gateway: TrackingGateway | None
        monitor: GpuMonitor | None

    def __getattr__(self, name: str) -> Any:
        if name != "provided" and name in context_names():
            return self.__dict__.get("provided", {}).get(name)
        raise AttributeError(f"the platform context has no {name!r} (no domain provides it)")

    def provide(self, name: str, part: Any) -> None:
        """A domain puts a service or part in; only what some domain declares may be put."""
        if name not in context_names():
            raise KeyError(f"no domain declares {name!r} among its services or parts")
        self.provided[name] = part
