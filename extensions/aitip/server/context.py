"""What the extension hands its handlers: the mode, the services, and the relay's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..identity.directory import Directory

if TYPE_CHECKING:  # the platform's engines are imported only in platform mode
    from ..catalog import Catalog
    from ..datasets.annotations import AnnotationService
    from ..datasets.service import DatasetService
    from ..experiments.service import ExperimentService
    from ..jobs.service import JobService
    from ..experiments.gateway import TrackingGateway
    from ..jobs.sweeps import SweepService
    from ..jobs.tracking_spool import JobSpools
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
    projects: ProjectService | None = None
    jobs: JobService | None = None
    worker: JobWorker | None = None
    sweeps: SweepService | None = None
    experiments: ExperimentService | None = None
    datasets: DatasetService | None = None
    annotations: AnnotationService | None = None
    resources: ResourceService | None = None
    webhooks: WebhookService | None = None
    webhook_dispatcher: WebhookDispatcher | None = None
    spools: JobSpools | None = None
    tracking_gateway: TrackingGateway | None = None
    monitor: GpuMonitor | None = None
    platform_url: str = ""
    platform_token: str = ""
    relay_timeout: float = 60.0
