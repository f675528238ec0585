"""A device's own route, ``ota/<project>/...`` (under the hub at ``/services/aitip/ota/``): its check-in, and its
project's TUF metadata and firmware targets. No hub identity: the device's token (``Authorization: Bearer
aitipdev_...``), looked up in the fleet controller's memory, reaches its own project only. What a device installs
it verifies itself (TUF, then the release signature); this route only decides who may ask."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from pydantic import ValidationError
from tornado import web

from ...devices.models import CheckIn
from ...devices.service import TOKEN_PREFIX, token_digest
from ..routes import RouteOperation
from .base import PlatformRequestMixin

MAX_WAIT_SECONDS = 120.0  # a long poll: the check-in answers as soon as there is something for the device
SUMMARY = "A device's check-in, and its project's TUF metadata and firmware targets (device token)"


class DeviceHandler(PlatformRequestMixin, web.RequestHandler):
    operations = {method: RouteOperation("device.connect", SUMMARY) for method in ("GET", "POST")}
    device: Any = None
    gone = False  # the device closed the connection (a long poll it gave up on)

    def on_connection_close(self) -> None:
        self.gone = True
        super().on_connection_close()

    def refuse(self, status: int, code: str, message: str, detail: Any = None) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="aitip-devices"')
        self.finish(json.dumps({"error": {"code": code, "message": message, "detail": detail}}))

    def prepare(self) -> None:
        devices = self.context.devices
        if devices is None:
            return self.refuse(503, "service_unavailable", "devices are off on this platform")
        scheme, _, token = self.request.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        entry = devices.fleet.device_by_token(token_digest(token)) \
            if scheme.lower() == "bearer" and token.startswith(TOKEN_PREFIX) else None
        if entry is None:
            return self.refuse(401, "not_authenticated", "send this device's token: 'Authorization: Bearer "
                               "aitipdev_...' (unknown or removed devices have none)")
        if entry.project != self.path_kwargs.get("project"):
            return self.refuse(403, "forbidden", "this device belongs to another project")
        self.device = entry

    def check_xsrf_cookie(self) -> None:
        """A device sends a token, never cookies: nothing for a forged cross-site request to ride on."""

    @allow_unauthenticated
    async def get(self, project: str, ota_path: str) -> None:
        devices = self.context.devices
        kind, _, name = ota_path.partition("/")
        if kind == "targets":
            data = await asyncio.to_thread(devices.target_bytes, self.device.project_id, name)
        else:
            path = devices.repository(self.device.project_id).metadata_file(name)
            data = path.read_bytes() if path is not None else None
        if data is None:
            return self.refuse(404, "not_found", f"the repository has no {ota_path}")
        self.set_header("Content-Type", "application/json" if kind == "metadata" else "application/octet-stream")
        self.set_header("Cache-Control", "no-store")
        self.finish(data)

    @allow_unauthenticated
    async def post(self, project: str, ota_path: str) -> None:
        if ota_path != "check-in":
            return self.refuse(404, "not_found", f"devices POST only to check-in, not {ota_path}")
        try:
            body = CheckIn.model_validate_json(self.request.body or b"")
        except ValidationError as error:
            return self.refuse(422, "invalid_input", "the check-in is not what a device sends: "
                               + "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                                           for e in error.errors()))
        wait = self.get_query_argument("wait", "0")
        try:
            seconds = float(wait)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= MAX_WAIT_SECONDS:
            return self.refuse(422, "invalid_input", f"wait is seconds to hold the check-in open, 0 to "
                               f"{MAX_WAIT_SECONDS:.0f}; not {wait!r}")
        fleet = self.context.devices.fleet
        answer = fleet.check_in(self.device, body)
        if answer.action == "none" and seconds > 0:
            woken = await fleet.wait(self.device, seconds)
            if self.gone:  # nobody to tell: what there is stays for the device's next check-in
                return
            if woken:
                answer = fleet.check_in(self.device, CheckIn(version=body.version, slot=body.slot))
        self.set_header("Content-Type", "application/json")
        self.finish(answer.model_dump_json(exclude_none=True))
