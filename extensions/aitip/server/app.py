"""The ``aitip`` Jupyter Server extension, in one of two modes.

* platform: the JupyterHub service ``aitip``. It alone opens the catalog and holds engine
  credentials, serves the REST API and checks every project role.
* workspace: inside each user's server. It relays ``api/aitip/v1/...`` to the platform service with
  the server's hub token, so notebooks and JupyterLab reach the platform through their own origin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Float, Integer, TraitError, Type, Unicode, default, validate

from .. import faults
from .. import settings as aitip_settings
from ..catalog import Catalog
from ..i18n import ENVIRONMENT_VARIABLE
from ..identity.directory import (
    Directory,
    HubDirectory,
    IdentityProviderDirectory,
    check_every_token_with_the_hub,
)
from ..isolation.mode import isolation
from ..isolation.state import secure_home
from .context import PlatformContext
from .domains import setup_domains, start_domains, stop_domains
from .routes import platform_routes, workspace_routes


class AitipExtension(ExtensionApp):
    name = "aitip"
    description = "AITIP platform API"
    load_other_extensions = True
    serverapp_config = {"allow_unauthenticated_access": False}

    mode = Enum(
        ["platform", "workspace"],
        help="""platform: serve the API from the catalog (run as the JupyterHub service 'aitip').
        workspace: relay the API to the platform service (inside users' servers).
        Default: $AITIP_MODE, else workspace.""",
    ).tag(config=True)

    catalog_url = Unicode(
        help="SQLAlchemy URL of the catalog (platform mode). Default: $AITIP_CATALOG_URL, else SQLite "
        "(WAL) at $AITIP_HOME/catalog.sqlite. Any postgresql:// URL scales it out.",
    ).tag(config=True)

    directory_class = Type(
        klass=Directory,
        help="Where users and groups are looked up: HubDirectory under JupyterHub (the default when "
        "$JUPYTERHUB_API_URL is set), IdentityProviderDirectory for a standalone server.",
    ).tag(config=True)

    platform_url = Unicode(
        help="Workspace mode: base URL of the platform service, e.g. "
        "http://127.0.0.1:8181/services/aitip/ (default: $AITIP_PLATFORM_URL, set by the spawner).",
    ).tag(config=True)

    platform_token = Unicode(
        help="Workspace mode: token the relay sends (default: $JUPYTERHUB_API_TOKEN, the server's own "
        "token, which the hub grants access:services!service=aitip).",
    ).tag(config=True)

    max_body_bytes = Integer(1024 * 1024, help="Largest JSON request body accepted (bytes); larger is 413.").tag(
        config=True
    )

    discard_body_bytes = Integer(
        1 << 30,
        help="""How much of a refused request's body is read and thrown away before the refusal (JSON 403,
        404, 413...) is answered, so that the answer reaches the client whole: a connection closed under an
        unread body is reset, and configurable-http-proxy then answers its own 503 page instead. A client
        that sends 'Expect: 100-continue' is answered before it sends the body. A larger body is answered at
        once, read for a few seconds more, and its connection closed.""",
    ).tag(config=True)

    relay_timeout = Float(60.0, help="Workspace mode: seconds to wait for the platform service.").tag(config=True)

    run_jobs = Bool(
        True, help="Platform mode: run a job worker in this process (set False when separate workers run jobs).",
    ).tag(config=True)

    executor_class = Type(
        "aitip.jobs.executor.LocalExecutor",
        klass="aitip.jobs.executor.Executor",
        help="Where jobs run: LocalExecutor (this machine, pooled fresh kernels) or RayExecutor.",
    ).tag(config=True)

    mlflow_tracking_uri = Unicode(
        help="MLflow tracking URI for job runs. Default: $AITIP_MLFLOW_TRACKING_URI, else the MLflow sqlite "
        "store at $AITIP_HOME/mlflow.sqlite. Set '' to disable tracking.",
    ).tag(config=True)

    data_registry_path = Unicode(
        help="Platform mode: the Git + DVC repository of dataset versions (only the platform writes it). "
        "Default: $AITIP_DATA_REGISTRY, else $AITIP_HOME/datasets/registry. Uploads are staged next to it.",
    ).tag(config=True)

    data_remote = Unicode(
        help="DVC remote the registry pushes versions to after registering them (a directory, s3://bucket/path, "
        "...). Default: $AITIP_DATA_REMOTE, else $AITIP_HOME/datasets/remote; 'none' keeps the data in the "
        "registry's own cache only.",
    ).tag(config=True)

    max_upload_bytes = Integer(
        5 * 1024**3, help="Largest dataset upload accepted (bytes); larger is 413 and nothing is kept.",
    ).tag(config=True)

    serving_metrics_seconds = Float(
        help="Platform mode: how often each endpoint's measurements (requests, errors, latency by version) are "
        "written as metric points, which rollout analyses read: an analysis interval should span two. "
        "Default: $AITIP_SERVING_METRICS_SECONDS, else 5.",
    ).tag(config=True)

    @default("data_registry_path")
    def _default_data_registry_path(self) -> str:
        return os.environ.get("AITIP_DATA_REGISTRY", str(aitip_settings.aitip_home() / "datasets" / "registry"))

    @default("data_remote")
    def _default_data_remote(self) -> str:
        return os.environ.get("AITIP_DATA_REMOTE", str(aitip_settings.aitip_home() / "datasets" / "remote"))

    @default("mlflow_tracking_uri")
    def _default_mlflow_tracking_uri(self) -> str:
        configured = os.environ.get("AITIP_MLFLOW_TRACKING_URI")
        if configured is not None:
            return configured
        return f"sqlite:///{aitip_settings.aitip_home() / 'mlflow.sqlite'}"

    @default("serving_metrics_seconds")
    def _default_serving_metrics_seconds(self) -> float:
        return aitip_settings.serving_metrics_seconds()

    @validate("serving_metrics_seconds")
    def _check_serving_metrics_seconds(self, proposal: Any) -> float:
        if not 0.1 <= proposal["value"] <= 3600:
            raise TraitError(f"serving_metrics_seconds is between 0.1 and 3600, not {proposal['value']}")
        return proposal["value"]

    @default("mode")
    def _default_mode(self) -> str:
        return os.environ.get("AITIP_MODE", "workspace")

    @default("catalog_url")
    def _default_catalog_url(self) -> str:
        return aitip_settings.catalog_url()

    @default("directory_class")
    def _default_directory_class(self) -> type[Directory]:
        return HubDirectory if os.environ.get("JUPYTERHUB_API_URL") else IdentityProviderDirectory

    @default("platform_url")
    def _default_platform_url(self) -> str:
        return os.environ.get("AITIP_PLATFORM_URL", "")

    @default("platform_token")
    def _default_platform_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def initialize_settings(self) -> None:
        directory = self.directory_class(parent=self)
        context = PlatformContext(mode=self.mode, directory=directory, max_body_bytes=self.max_body_bytes,
                                  discard_body_bytes=self.discard_body_bytes,
                                  platform_url=self.platform_url, platform_token=self.platform_token,
                                  relay_timeout=self.relay_timeout)
        if self.mode == "platform":
            os.umask(0o077)  # this process is the platform: what it creates is its own (see aitip.isolation.state)
            secure_home(aitip_settings.aitip_home(), separate_accounts=isolation().separate_accounts)
            catalog = Catalog(self.catalog_url)
            catalog.migrate()
            faults.point("platform.starting")  # before it answers: JupyterHub gives up, the launcher starts it again
            context.catalog = catalog
            setup_domains(context, self)
            from .mcp import McpFace

            self.settings["aitip_mcp"] = McpFace(context)
            self.log.info("aitip platform: catalog %s at revision %s", catalog.engine.url.render_as_string(),
                          catalog.current_revision())
        else:
            self.log.info("aitip workspace: relaying to %s", self.platform_url or "(no platform configured)")
            self._follow_page_language()
        if self.mode == "platform" and check_every_token_with_the_hub(self.serverapp.identity_provider):
            self.log.info("aitip platform: every token is checked with the hub (no lookup cache)")
        self.settings["aitip"] = context

    def _follow_page_language(self) -> None:
        """JupyterLab in the language of the page that started this server (``server.lab_language``)."""
        from jupyterlab.commands import get_user_settings_dir

        from .lab_language import follow_page_language

        try:
            if follow_page_language(Path(get_user_settings_dir()), os.environ.get(ENVIRONMENT_VARIABLE)):
                self.log.info("aitip workspace: JupyterLab's language set to %s", os.environ[ENVIRONMENT_VARIABLE])
        except OSError as error:  # a read-only home: JupyterLab stays in its own default
            self.log.warning("aitip workspace: JupyterLab's language left as it was: %s", error)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        context: Any = self.settings.get("aitip")
        if context is not None and context.mode == "platform":
            await start_domains(context, self)

    def initialize_handlers(self) -> None:
        routes = platform_routes() if self.mode == "platform" else workspace_routes()
        self.handlers.extend((route.pattern, route.handler) for route in routes)

    async def stop_extension(self) -> None:
        """Stop every part, each even when another fails to stop (its failure is logged)."""
        context: Any = self.settings.get("aitip")
        if context is None:
            return
        if context.mode != "platform":
            return  # a workspace relays; it runs no domain
        mcp_face = self.settings.get("aitip_mcp")
        first = [("the MCP face", mcp_face.stop)] if mcp_face is not None else []
        await stop_domains(context, self.log, first=first)
