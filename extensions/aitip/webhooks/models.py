"""Request and response types of the webhooks API (the one schema source for REST, SDK, CLI and MCP)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..errors import InvalidInput, InvalidValue
from ..schema import MAX_ID, VISIBLE, RequestModel, ResponseModel, text
from .payloads import EVENT_FAMILIES, EVENT_NAME_PATTERN
from .targets import MAX_URL_LENGTH, parse


class PayloadFormat(str, Enum):
    json = "json"
    slack = "slack"


class DeliveryState(str, Enum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


def _url_form(value: str) -> str:
    """The URL's form only; where its host resolves is checked by the service (it needs DNS)."""
    try:
        parse(value)
    except InvalidInput as exc:
        raise InvalidValue(exc.phrase) from None
    return value


WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH, pattern=rf"^[hH][tT][tT][pP][sS]?://{VISIBLE}+$",
          description="An http:// or https:// URL without credentials. Its host must resolve to public "
          "addresses only, unless an admin allows the network (AITIP_WEBHOOK_ALLOWED_NETWORKS).",
          examples=["https://hooks.example.com/aitip"]),
    AfterValidator(_url_form),
]

MAILTO_PATTERN = r"^mailto:[^@\s\x00-\x1f\x7f-\x9f<>,;:\\\"()\[\]]{1,64}@[A-Za-z0-9.-]{1,253}$"


def _url_or_mailto(value: str) -> str:
    return value if value.startswith("mailto:") else _url_form(value)


SubscriptionUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH,
          pattern=rf"^([hH][tT][tT][pP][sS]?://{VISIBLE}+|{MAILTO_PATTERN[1:-1]})$",
          description="An http:// or https:// URL without credentials (its host must resolve to public addresses "
          "only, unless an admin allows the network), or mailto:<address> for e-mail over the platform's SMTP "
          "server.", examples=["https://hooks.example.com/aitip", "mailto:ml-releases@example.com"]),
    AfterValidator(_url_or_mailto),
]

_FAMILIES = "|".join(EVENT_FAMILIES)
EVENT_FILTER_PATTERN = rf"^(\*|({_FAMILIES})(\.(\*|[a-z][a-z0-9_]{{0,30}}))?)$"
EventFilter = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=EVENT_FILTER_PATTERN,
          description=f"'*' for every event, a family ({', '.join(EVENT_FAMILIES)}) or 'family.*' for all of "
          "its events, or one event such as 'job.failed'.", examples=["job.*", "sweep.succeeded"]),
]
EventName = Annotated[str, Field(min_length=3, max_length=64, pattern=EVENT_NAME_PATTERN,
                                 description="<family>.<what>, e.g. job.succeeded.")]

CallbackSecret = Annotated[
    str,
    Field(min_length=24, max_length=256, pattern=r"^[\x21-\x7e]+$",
          description="The secret to sign the callback with: 24-256 printable ASCII characters, no spaces."),
]


class SubscriptionCreate(RequestModel):
    url: SubscriptionUrl
    events: list[EventFilter] = Field(["*"], min_length=1, max_length=50,
                                      description="Which events to deliver; any filter matching is enough.")
    format: PayloadFormat = Field(PayloadFormat.json,
                                  description="json: the signed event envelope. slack: a Slack incoming-webhook "
                                  "message ({text, blocks}). A mailto: subscription is sent as a plain-text "
                                  "e-mail whatever the format.")
    description: str = text(500, default="", description="What the receiver is, for the project's maintainers.")


class SubscriptionListQuery(RequestModel):
    include_inactive: bool = Field(False, description="Also list removed subscriptions.")


class Subscription(ResponseModel):
    id: int
    project: str
    url: str
    events: list[str]
    format: PayloadFormat
    description: str
    created_by: str
    created_at: datetime
    active: bool


class SubscriptionCreated(Subscription):
    secret: str = Field(description="The signing secret. Shown only in this answer: store it with the receiver, "
                        "which checks each delivery with aitip.webhooks.signing.verify.")


class SubscriptionList(ResponseModel):
    items: list[Subscription]


class DeliveryListQuery(RequestModel):
    subscription_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this subscription's deliveries.")
    state: DeliveryState | None = Field(None, description="Only deliveries in this state")
    event: EventName | None = Field(None, description="Only deliveries of this event, e.g. job.failed")
    callbacks: bool | None = Field(None, description="True: only one-off callbacks; False: only subscriptions'.")
    limit: int = Field(50, ge=1, le=500, description="At most this many, newest first")
    offset: int = Field(0, ge=0, le=1_000_000, description="Skip this many, newest first")


class DeliveryAttempt(ResponseModel):
    number: int
    started_at: datetime
    duration_ms: int
    address: str | None = Field(description="The IP address the attempt connected to (after the target check).")
    status_code: int | None
    error: str | None


class Delivery(ResponseModel):
    id: str = Field(description="Sent as X-Aitip-Delivery; the same on every retry, so receivers can dedupe.")
    subscription_id: int | None = Field(description="None for a one-off callback.")
    project: str | None
    url: str
    event: str
    state: DeliveryState
    attempts: int
    max_attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    finished_at: datetime | None
    payload: dict[str, Any]
    attempt_log: list[DeliveryAttempt]


class DeliveryList(ResponseModel):
    items: list[Delivery]
    total: int
    limit: int
    offset: int


class CallbackRequest(RequestModel):
    """What a long operation's request embeds (``callback: CallbackRequest | None``) to be told its end."""

    url: WebhookUrl
    secret: CallbackSecret | None = Field(None, description="Sign with this secret (one an agent already "
                                          "holds); omitted: the platform makes one and returns it once.")


class CallbackRegistration(ResponseModel):
    url: str
    secret: str = Field(description="The secret the callback will be signed with. Returned once: the platform "
                        "keeps it only to sign, and never shows it again.")
    generated: bool = Field(description="True when the platform made the secret (none was given).")
