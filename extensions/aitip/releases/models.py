"""Request and response types of the releases API."""

from __future__ import annotations

import re
from datetime import datetime, time
from enum import Enum
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidValue
from ..operations.inputs import encoded_length
from ..schema import DATASET_NAME_PATTERN, NO_NUL_PATTERN, PROJECT_NAME_PATTERN, RequestModel, ResponseModel, text
from ..serving.reads import endpoint_settings
from .semver import SEMVER_PATTERN
from .windows import DAYS

ENVIRONMENTS = ("dev", "test", "staging", "prod")
METADATA_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
METADATA_KEY = re.compile(METADATA_KEY_PATTERN)
Environment = Literal["dev", "test", "staging", "prod"]
ReleaseName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$",
                                   description="The released thing's name: lower-case letters, digits, '.', '_', "
                                               "'-' (a model's release is usually named after it)")]
SemanticVersion = Annotated[str, Field(min_length=5, max_length=64, pattern=SEMVER_PATTERN,
                                       description="A semantic version: MAJOR.MINOR.PATCH[-pre-release][+build]")]
TemplateName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$",
                                    description="A scenario template's name")]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, 24-hour clock")]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ApproverRole = Literal["developer", "maintainer", "admin"]
MAX_FIRMWARE_BYTES = 16 * 1024 * 1024
HARDWARE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class ReleaseKind(str, Enum):
    model = "model"  # a registered model version, with evidence for it on a dataset version
    service = "service"  # an endpoint's model version (with its evidence) and serving settings
    configuration = "configuration"  # a JSON document (settings a service or device reads)
    firmware = "firmware"  # a binary for devices of one hardware, sent over the air (TUF); may embed a model version


class ReleaseState(str, Enum):
    requested = "requested"  # waiting for its approvals
    approved = "approved"
    rejected = "rejected"
    released = "released"  # promoted to prod


class ApprovalStage(RequestModel):
    role: ApproverRole = Field("maintainer", description="The least project role an approver of this stage holds")
    count: int = Field(1, ge=1, le=10, description="How many different people of that role must approve")


class ReleaseWindow(RequestModel):
    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1, max_length=7,
                            description="The days the window opens on")
    start: ClockTime = Field(description="When it opens (HH:MM)")
    end: ClockTime = Field(description="When it closes (HH:MM); before start: it closes the next day")
    timezone: str = Field("UTC", max_length=64, description="An IANA time zone, such as Asia/Shanghai")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        if zone != "UTC" and zone not in available_timezones():
            raise InvalidValue("{zone!r} is not an IANA time zone (such as UTC or Asia/Shanghai)", zone=zone)
        return zone

    @model_validator(mode="after")
    def _not_empty(self) -> ReleaseWindow:
        if self.start == self.end:
            raise InvalidValue("start and end are the same: the window would never be open")
        return self

    def opening(self) -> Any:
        """The window with clock times, for :mod:`.windows`."""
        return _ClockWindow(self.days, time.fromisoformat(self.start), time.fromisoformat(self.end), self.timezone)


class _ClockWindow:
    def __init__(self, days: list[str], start: time, end: time, timezone: str) -> None:
        self.days, self.start, self.end, self.timezone = days, start, end, timezone


class TestRunGate(RequestModel):
    """A test notebook of the project's own that must have run, and succeeded, on the release's exact model
    version and dataset version."""

    notebook: str = Field(min_length=1, max_length=255, pattern=r"^[^/\x00]+\.ipynb$",
                          description="The job's notebook name (such as smoke_tests.ipynb)")
    notebook_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                                        description="Its content's SHA-256, pinned: a run of any other content does "
                                                    "not count")


class ReleasePolicySet(RequestModel):
    """What a project's model releases must carry, and who approves a release request."""

    evaluation: bool = Field(True, description="A model release needs a passed evaluation of its exact model "
                                               "version on its exact dataset version")
    simulations: list[TemplateName] = Field(
        default_factory=list, max_length=20,
        description="Scenario templates under which the exact model version must have passed on the exact "
                    "dataset version")
    test_runs: list[TestRunGate] = Field(
        default_factory=list, max_length=10,
        description="Test notebooks whose newest run on the exact model version (parameters model_name and "
                    "model_version) and dataset version (a declared or reported input) must have succeeded")
    approvals: list[ApprovalStage] = Field(
        default_factory=lambda: [ApprovalStage()], min_length=1, max_length=5,
        description="The approvals a request needs: stages of a role and a count")
    ordered: bool = Field(False, description="Stages are approved in their order (the first before the second)")
    auto_approve: bool = Field(False, description="Approve a model release at once when every evidence gate "
                                                  "passed (never without a gate); other releases go through "
                                                  "the approval stages")
    windows: list[ReleaseWindow] = Field(default_factory=list, max_length=20,
                                         description="When a release may reach prod (none: any time)")

    @field_validator("simulations")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise InvalidValue("a template is named twice")
        return names

    @field_validator("test_runs")
    @classmethod
    def _distinct_notebooks(cls, gates: list[TestRunGate]) -> list[TestRunGate]:
        if len({gate.notebook for gate in gates}) != len(gates):
            raise InvalidValue("a test notebook is named twice")
        return gates

    @model_validator(mode="after")
    def _some_gate(self) -> ReleasePolicySet:
        if not (self.evaluation or self.simulations):
            raise InvalidValue("a model release ships only with evidence: keep evaluation, or name "
                               "simulation templates")
        return self


class ReleasePolicy(ResponseModel):
    project: str
    settings: ReleasePolicySet = Field(description="The policy (the default one until a maintainer sets it)")
    default: bool = Field(description="True while the project has not set a policy of its own")
    updated_by: str | None = None
    updated_at: datetime | None = None


class ReleaseRequest(RequestModel):
    """A release to request: a model version with the dataset version its evidence is on; an endpoint's version
    and settings (a service); firmware for a hardware model; or a configuration."""

    kind: ReleaseKind = Field(description="What is released")
    name: ReleaseName
    version: SemanticVersion
    model: str | None = Field(None, min_length=1, max_length=256, description="A model release: the registered "
                                                                               "model")
    model_version: int | None = Field(None, ge=1, le=999_999_999, description="A model release: its version")
    dataset: str | None = Field(None, max_length=100, pattern=DATASET_NAME_PATTERN,
                                description="A model release: the dataset its evidence was measured on")
    dataset_version: int | None = Field(None, ge=1, le=999_999_999,
                                        description="The dataset version (default: the newest one with a passed "
                                                    "evaluation of this model version)")
    configuration: dict[str, Any] | None = Field(None, description="A configuration release: the JSON document")
    firmware_base64: str | None = Field(
        None, max_length=encoded_length(MAX_FIRMWARE_BYTES),
        description="A firmware release: the image, base64 (at most 16 MiB once decoded)")
    hardware: str | None = Field(None, min_length=1, max_length=64, pattern=HARDWARE_PATTERN,
                                 description="A firmware release: the hardware model it runs on")
    endpoint: str | None = Field(None, min_length=1, max_length=63, pattern=PROJECT_NAME_PATTERN,
                                 description="A service release: the endpoint it is for")
    settings: dict[str, Any] | None = Field(
        None, description="A service release: the endpoint's serving settings (backend, batching, scaling, "
                          "resources, sampling; the defaults for what it leaves out)")
    changelog: str = text(20_000, default="", description="What changed, for people (Markdown)")
    metadata: dict[str, Annotated[str, Field(max_length=1000, pattern=NO_NUL_PATTERN)]] = Field(
        default_factory=dict, max_length=50,
        description="Labels of your own (key -> text; keys of 1 to 64 letters, digits, '_', '.', '-')")

    @field_validator("metadata")
    @classmethod
    def _label_keys(cls, metadata: dict[str, str]) -> dict[str, str]:
        for key in metadata:
            if not METADATA_KEY.fullmatch(key):
                raise InvalidValue("label {key!r}: keys are 1 to 64 letters, digits, '_', '.' or '-'",
                                   key=key)
        return metadata

    @model_validator(mode="after")
    def _subject(self) -> ReleaseRequest:
        model_fields = {"model": self.model, "model_version": self.model_version, "dataset": self.dataset,
                        "dataset_version": self.dataset_version}
        firmware_fields = {"firmware_base64": self.firmware_base64, "hardware": self.hardware}
        service_fields = {"endpoint": self.endpoint, "settings": self.settings}
        for kind, fields in ((ReleaseKind.firmware, firmware_fields), (ReleaseKind.service, service_fields)):
            given = [name for name, value in fields.items() if value is not None]
            if self.kind is not kind and given:
                raise InvalidValue("a {kind} release has no {given}",
                                   kind=self.kind.value, given=', '.join(given))
        if self.kind is ReleaseKind.service:
            missing = [name for name in ("model", "model_version", "dataset", "endpoint")
                       if {**model_fields, **service_fields}[name] is None]
            if missing:
                raise InvalidValue("a service release names {missing}", missing=', '.join(missing))
            if self.configuration is not None:
                raise InvalidValue("a service release has no configuration")
            if self.settings is not None:
                self.settings = endpoint_settings(self.settings)
        elif self.kind is ReleaseKind.model:
            missing = [name for name in ("model", "model_version", "dataset") if model_fields[name] is None]
            if missing:
                raise InvalidValue("a model release names {missing}", missing=', '.join(missing))
            if self.configuration is not None:
                raise InvalidValue("a model release has no configuration")
        elif self.kind is ReleaseKind.firmware:
            missing = [name for name, value in firmware_fields.items() if value is None]
            if missing:
                raise InvalidValue("a firmware release needs {missing}", missing=' and '.join(missing))
            if self.configuration is not None:
                raise InvalidValue("a firmware release has no configuration")
            named = [name for name in ("model", "model_version", "dataset") if model_fields[name] is not None]
            if named and len(named) < 3 or self.dataset_version is not None and not named:
                raise InvalidValue("firmware that embeds a model names model, model_version and dataset "
                                   "(all three)")
        else:
            given = [name for name, value in model_fields.items() if value is not None]
            if given:
                raise InvalidValue("a configuration release has no {given}", given=', '.join(given))
            if self.configuration is None:
                raise InvalidValue("a configuration release needs its configuration (a JSON object)")
            if len(str(self.configuration)) > 65_536:
                raise InvalidValue("the configuration is larger than 64 KiB")
        return self

    @property
    def embeds_model(self) -> bool:
        """It names a model version whose evidence the policy's gates check (a model release, or firmware that
        carries one)."""
        return self.model is not None


class Firmware(ResponseModel):
    sha256: str = Field(description="The image's SHA-256 (what devices check after TUF verified it)")
    length: int
    hardware: str


class Evidence(ResponseModel):
    """One piece of evidence a release carries, found for its exact model and dataset version."""

    kind: Literal["evaluation", "simulation", "test_run"]
    id: int
    state: str
    model: str
    model_version: int
    dataset: str
    dataset_version: int
    dataset_md5: str
    template: str | None = Field(None, description="A simulation's scenario template (name@version)")
    notebook: str | None = Field(None, description="A test run's notebook")
    notebook_sha256: str = Field(description="The shipped notebook the evidence's job ran")
    job_id: int | None
    finished_at: datetime | None


class MissingEvidence(ResponseModel):
    kind: Literal["evaluation", "simulation", "test_run"]
    requirement: str = Field(description="What the policy asks for")
    reason: str = Field(description="What was found instead")


class Decision(ResponseModel):
    user: str
    decision: Literal["approve", "reject"]
    stage: int | None = Field(description="The approval stage it filled (from 0); null for a rejection or the policy")
    role: str = Field(description="The decider's role when deciding ('policy' for an automatic approval)")
    comment: str
    at: datetime


class Promotion(ResponseModel):
    environment: Environment
    by: str
    at: datetime


class SignatureInfo(ResponseModel):
    algorithm: str
    key_id: str
    content_sha256: str
    signature: str = Field(description="Base64 of the Ed25519 signature of the canonical content")


class Release(ResponseModel):
    id: int
    project: str
    kind: ReleaseKind
    name: str
    version: str
    state: ReleaseState
    environment: Environment = Field(description="The environment it has reached")
    next_environment: Environment | None = Field(description="Where it may be promoted next (null at prod)")
    model: str | None
    model_version: int | None
    dataset: str | None
    dataset_version: int | None
    configuration: dict[str, Any] | None
    firmware: Firmware | None = Field(None, description="A firmware release: its image")
    endpoint: str | None = Field(None, description="A service release: its endpoint")
    settings: dict[str, Any] | None = Field(None, description="A service release: its serving settings, completed "
                                                              "with the defaults (null: the endpoint's own)")
    changelog: str
    metadata: dict[str, str]
    evidence: list[Evidence]
    approvals_needed: list[ApprovalStage] = Field(description="The policy's stages when it was requested")
    ordered: bool
    decisions: list[Decision]
    promotions: list[Promotion]
    signature: SignatureInfo
    content: dict[str, Any] = Field(description="What was signed, exactly")
    created_by: str
    created_at: datetime


class ReleaseList(ResponseModel):
    releases: list[Release]


class ReleaseListQuery(RequestModel):
    name: ReleaseName | None = Field(None, description="Only the releases of this name")
    state: ReleaseState | None = Field(None, description="Only releases in this state")
    limit: int = Field(100, ge=1, le=1000, description="At most this many, newest first")


class DecisionSet(RequestModel):
    decision: Literal["approve", "reject"] = Field(description="Approve or reject the request")
    comment: str = text(2000, default="", description="Why, for the audit trail")


class PromotionSet(RequestModel):
    environment: Environment = Field(description="The next environment (one step at a time)")


class Verification(ResponseModel):
    release: int
    valid: bool
    reason: str = Field(description="Why not, when not valid")
    algorithm: str
    key_id: str
    content_sha256: str


class SigningKey(ResponseModel):
    algorithm: str
    key_id: str
    public_key_pem: str
