"""Outgoing webhooks: project event subscriptions and long operations' one-off callbacks, signed and retried.

* :mod:`.signing` — the signature every delivery carries, and ``verify`` for receivers (standard library only).
* :mod:`.targets` — which URLs and addresses the platform may post to.
* :mod:`.payloads` — the JSON envelope and the Slack format.
* :mod:`.delivery` — the worker that sends, retries and records (``WebhookDispatcher``).
* :mod:`.service` — ``WebhookService``: subscriptions, the delivery log, ``publish`` and ``callback``.

Importing this package loads only the signing module, so a receiver needs nothing else of the platform.
"""

from .signing import SignatureError, verify

__all__ = ["SignatureError", "verify"]
