"""Webhook subscriptions and their delivery log: the webhooks section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .models import (
    Delivery,
    DeliveryList,
    DeliveryListQuery,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
    SubscriptionListQuery,
)

_HOOKS = "projects/{project}/webhooks"
_HOOK = {"subscription": "subscription_id"}

SECTION = Section("webhooks", "Webhooks", (
    Operation("webhooks.list", "webhook.read", "GET", _HOOKS, "The project's webhook subscriptions",
              query=SubscriptionListQuery, response=SubscriptionList, call="webhooks.list_subscriptions"),
    Operation("webhooks.subscribe", "webhook.manage", "POST", _HOOKS,
              "Subscribe a URL (or a mailto: address) to the project's job, sweep, dataset, evaluation, simulation, "
              "release and rollout events (signed; the secret is shown once)",
              body=SubscriptionCreate, response=SubscriptionCreated, status=201, call="webhooks.subscribe",
              location="id"),
    Operation("webhooks.unsubscribe", "webhook.manage", "DELETE", f"{_HOOKS}/{{subscription}}",
              "Remove a subscription (its delivery log stays)", status=204, call="webhooks.unsubscribe",
              arguments=_HOOK),
    Operation("webhooks.ping", "webhook.manage", "POST", f"{_HOOKS}/{{subscription}}/ping",
              "Send a subscription a signed test event", response=Delivery, status=201, call="webhooks.ping",
              arguments=_HOOK),
    Operation("webhooks.deliveries", "webhook.read", "GET", "projects/{project}/webhook-deliveries",
              "Recent deliveries with every attempt", query=DeliveryListQuery, response=DeliveryList,
              call="webhooks.deliveries"),
))
