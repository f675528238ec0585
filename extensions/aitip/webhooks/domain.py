"""Webhooks: project subscriptions and callbacks, delivered signed and retried in the background."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class WebhooksDomain(Domain):
    name = "webhooks"
    title = "Webhooks"
    tables = ("aitip.webhooks.tables",)
    operations = "aitip.webhooks.operations"
    services = {"webhooks": ServiceSpec("aitip.webhooks.service:WebhookService",
                                        "webhooks are not delivered from this platform")}
    parts = ("webhook_dispatcher",)

    def setup(self, context: Any, config: Any) -> None:
        from .delivery import WebhookDispatcher
        from .service import WebhookService

        dispatcher = WebhookDispatcher(context.catalog, parent=config)
        context.provide("webhook_dispatcher", dispatcher)
        context.provide("webhooks", WebhookService(context.catalog, dispatcher))

    async def start(self, context: Any, config: Any) -> None:
        if context.mode != "worker":  # a worker process queues deliveries; the platform service sends them
            await context.webhook_dispatcher.start()

    def stops(self, context: Any) -> list[Stop]:
        dispatcher = context.webhook_dispatcher
        return [("webhook delivery", dispatcher.stop)] if dispatcher is not None and context.mode != "worker" else []
