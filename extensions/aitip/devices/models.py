"""Request and response types of the devices API: the registry, firmware rollouts in device groups, and what a
device says and hears at its check-in."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidValue
from ..schema import RequestModel, ResponseModel

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
GROUP_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
DeviceName = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN,
                                  description="The device's name in the project (its serial number, say)")]
GroupName = Annotated[str, Field(min_length=1, max_length=64, pattern=GROUP_PATTERN,
                                 description="A device group: lower-case letters, digits, '.', '_', '-'")]
Hardware = Annotated[str, Field(min_length=1, max_length=64, pattern=GROUP_PATTERN,
                                description="The hardware model; firmware goes only to devices of its hardware")]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=GROUP_PATTERN)]


class DeviceState(str, Enum):
    registered = "registered"  # never checked in
    idle = "idle"  # runs what it should
    updating = "updating"  # has an update to install
    failed = "failed"  # its last update failed (it runs its previous slot)


class DeviceRegister(RequestModel):
    name: DeviceName
    hardware: Hardware
    group: GroupName = Field("default", description="The group a rollout addresses it by")
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Labels of your own")


class DeviceQuery(RequestModel):
    group: GroupName | None = Field(None, description="Only devices of this group")
    state: DeviceState | None = Field(None, description="Only devices in this state")
    version: str | None = Field(None, max_length=64, description="Only devices running this version")
    limit: int = Field(1000, ge=1, le=100_000, description="At most this many, by name")


class Device(ResponseModel):
    id: int
    project: str
    name: str
    hardware: str
    group: str
    tags: list[str]
    token_hint: str = Field(description="The first characters of its token, to tell tokens apart")
    version: str | None = Field(description="The firmware version it reported running")
    slot: str | None = Field(description="The A/B slot it booted from")
    state: DeviceState
    message: str
    last_seen: datetime | None
    created_by: str
    created_at: datetime


class DeviceList(ResponseModel):
    devices: list[Device]


class Provisioning(ResponseModel):
    """What a device is provisioned with, once: its token and the trust it starts from."""

    device: Device
    token: str = Field(description="The device's token (shown once; the platform keeps only its SHA-256)")
    base_url: str = Field(description="The device API's path under the platform (check-in, TUF metadata, targets)")
    trusted_root: dict[str, Any] = Field(description="The project's TUF root metadata (the device's first trust)")
    release_key_pem: str = Field(description="The platform's public key that signs releases (Ed25519, PEM)")


class FleetVersion(ResponseModel):
    version: str | None
    state: DeviceState
    devices: int


class Fleet(ResponseModel):
    project: str
    devices: int
    by_version: list[FleetVersion] = Field(description="Devices per version and state")
    groups: dict[str, int] = Field(description="Devices per group")


class WaveSet(RequestModel):
    """One group of a rollout (hawkBit's rollout group)."""

    group: GroupName
    success_threshold: int = Field(100, ge=1, le=100, description="Percent of the group that must have installed "
                                                                  "it before the next group starts")
    error_threshold: int = Field(10, ge=0, le=100, description="Percent of the group whose install failed above "
                                                               "which the rollout stops (an emergency stop)")


class DeviceRolloutStart(RequestModel):
    groups: list[WaveSet] = Field(min_length=1, max_length=50, description="The groups, in order")
    poll_seconds: float = Field(30.0, ge=0.2, le=86_400, description="How often devices check in meanwhile")

    @field_validator("groups")
    @classmethod
    def _distinct(cls, groups: list[WaveSet]) -> list[WaveSet]:
        names = [wave.group for wave in groups]
        if len(set(names)) != len(names):
            raise InvalidValue("a group is named twice")
        return groups


class DeviceRolloutState(str, Enum):
    running = "running"
    paused = "paused"  # no new installs start until resumed
    stopped = "stopped"  # an emergency stop: no device installs it any more
    succeeded = "succeeded"


class Wave(ResponseModel):
    group: str
    success_threshold: int
    error_threshold: int
    devices: int = Field(description="Devices of the group (of the release's hardware)")
    assigned: int
    installed: int
    failed: int
    withdrawn: int = Field(0, description="Updates an emergency stop withdrew before the device started them")
    started: bool


class DeviceRollout(ResponseModel):
    id: int
    project: str
    release: int
    release_name: str
    version: str
    target: str = Field(description="The TUF target path devices fetch and verify")
    state: DeviceRolloutState
    group_index: int = Field(description="The group being rolled out to (from 0)")
    poll_seconds: float
    waves: list[Wave]
    message: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class DeviceRolloutList(ResponseModel):
    rollouts: list[DeviceRollout]


class StopBody(RequestModel):
    reason: str = Field("stopped by hand", min_length=1, max_length=500, description="Why (told to devices)")


class Report(RequestModel):
    rollout: int = Field(ge=1, description="The rollout whose update this reports")
    state: Literal["installed", "failed"]
    message: str = Field("", max_length=2000)


class CheckIn(RequestModel):
    """What a device says each time it polls."""

    version: str | None = Field(None, max_length=64, description="The firmware version it runs")
    slot: Literal["a", "b"] | None = Field(None, description="The slot it booted from")
    report: Report | None = Field(None, description="How the update it was given went")

    @model_validator(mode="after")
    def _report_needs_version(self) -> CheckIn:
        if self.report is not None and self.report.state == "installed" and self.version is None:
            raise InvalidValue("an installed update reports the version now running")
        return self


class Update(ResponseModel):
    rollout: int
    release: int
    name: str
    version: str
    target: str
    content: dict[str, Any] = Field(description="The release's signed content")
    signature: str = Field(description="Base64 of the platform's Ed25519 signature of the canonical content")
    key_id: str


class CheckInAnswer(ResponseModel):
    device: str
    action: Literal["none", "update", "stop"] = Field(description="update: install ``update``; stop: an emergency "
                                                                  "stop withdrew the update it was given")
    poll_seconds: float
    update: Update | None = None
    reason: str = ""
