"""The devices section of the operation table: the registry, the fleet, and firmware rollouts to device groups.
Devices themselves use their own route (:mod:`aitip.server.handlers.devices`), checked as ``device.connect``."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .models import (
    Device,
    DeviceList,
    DeviceQuery,
    DeviceRegister,
    DeviceRollout,
    DeviceRolloutList,
    DeviceRolloutStart,
    Fleet,
    Provisioning,
    StopBody,
)

_DEVICES = "projects/{project}/devices"
_ROLLOUTS = "projects/{project}/device-rollouts"
_ROLLOUT = f"{_ROLLOUTS}/{{device_rollout}}"
_ROLLOUT_ARGUMENT = {"device_rollout": "rollout"}

SECTION = Section("devices", "Devices and over-the-air firmware", (
    Operation("devices.register", "device.manage", "POST", _DEVICES,
              "Register a device; answers its token (once), the project's TUF root and the release key it is "
              "provisioned with", body=DeviceRegister, response=Provisioning, status=201, call="devices.register"),
    Operation("devices.list", "device.read", "GET", _DEVICES, "The project's devices, by name", query=DeviceQuery,
              response=DeviceList, call="devices.list"),
    Operation("devices.get", "device.read", "GET", f"{_DEVICES}/{{device}}", "One device: what it runs and how its "
              "last update went", response=Device, call="devices.get"),
    Operation("devices.delete", "device.manage", "DELETE", f"{_DEVICES}/{{device}}",
              "Remove a device; its token stops working at once", status=204, call="devices.delete"),
    Operation("devices.fleet", "device.read", "GET", "projects/{project}/fleet",
              "The fleet: devices per firmware version and state, and per group", response=Fleet,
              call="devices.fleet_summary"),
    Operation("device_rollouts.start", "release.rollout", "POST", "projects/{project}/releases/{release}/device-rollouts",
              "Send an approved firmware release to device groups in order: published in the project's TUF "
              "repository, the next group once this one reaches its success threshold, an emergency stop above "
              "its error threshold", body=DeviceRolloutStart, response=DeviceRollout, status=201,
              call="devices.start_rollout", location="id", long_running=True),
    Operation("device_rollouts.list", "device.read", "GET", _ROLLOUTS, "The project's device rollouts, newest first",
              response=DeviceRolloutList, call="devices.list_rollouts"),
    Operation("device_rollouts.get", "device.read", "GET", _ROLLOUT,
              "One device rollout: each group's devices, installs and failures", response=DeviceRollout,
              call="devices.get_rollout", arguments=_ROLLOUT_ARGUMENT),
    Operation("device_rollouts.pause", "release.rollout", "POST", f"{_ROLLOUT}/pause",
              "Pause: no device starts installing until resumed", response=DeviceRollout,
              call="devices.pause_rollout", arguments=_ROLLOUT_ARGUMENT),
    Operation("device_rollouts.resume", "release.rollout", "POST", f"{_ROLLOUT}/resume", "Resume a paused rollout",
              response=DeviceRollout, call="devices.resume_rollout", arguments=_ROLLOUT_ARGUMENT),
    Operation("device_rollouts.stop", "release.rollout", "POST", f"{_ROLLOUT}/stop",
              "Emergency stop: every device that has not installed it yet hears so at its next check-in",
              body=StopBody, response=DeviceRollout, call="devices.stop_rollout", arguments=_ROLLOUT_ARGUMENT),
))
