"""A real AITIP platform for integration tests: ``aitip up`` (JupyterHub + configurable-http-proxy +
the platform service) on free loopback ports, driven over HTTP like a person or a script would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aitip.cli import _cookie, hub_login
from aitip.launcher import descendants, free_port
from tests.support.paths import open_to_all_accounts

VENV_BIN = Path(sys.executable).parent


@dataclass
class RunningPlatform:
    url: str
    home: Path
    admin_user: str
    admin_password: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _admin_http: httpx.Client | None = field(default=None, repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def dashboards_url(self) -> str:
        """The Panel dashboards, served as the hub service ``dashboards``."""
        return f"{self.url}/services/dashboards"

    # ----- people -----

    def signup(self, username: str, password: str) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            http.get("/hub/signup")
            return http.post("/hub/signup", data={
                "username": username, "signup_password": password, "signup_password_confirmation": password,
                "_xsrf": _cookie(http, "_xsrf") or ""})

    def browser_login(self, username: str, password: str) -> httpx.Client:
        http = httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)
        http.get("/hub/login")
        response = http.post("/hub/login", data={"username": username, "password": password,
                                                 "_xsrf": _cookie(http, "_xsrf") or ""})
        if response.status_code != 302:
            http.close()
            raise PermissionError(f"login of {username} refused ({response.status_code})")
        return http

    def admin(self) -> httpx.Client:
        if self._admin_http is None:
            self._admin_http = self.browser_login(self.admin_user, self.admin_password)
        return self._admin_http

    def approve(self, username: str) -> None:
        response = self.admin().get(f"/hub/authorize/{username}")
        assert response.status_code == 302, response.text

    def token(self, username: str, password: str) -> str:
        return hub_login(self.url, username, password, note=f"test {uuid.uuid4().hex[:6]}")

    # ----- APIs -----

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/services/aitip/api/aitip/v1/", timeout=30,
                            headers={"Authorization": f"token {token}"})

    def hub_api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/hub/api/", timeout=60, headers={"Authorization": f"token {token}"})

    def spawn(self, username: str, token: str, timeout: float = 90, accept_language: str | None = None) -> None:
        """Start ``username``'s server (as a browser of ``accept_language`` would) and wait until it is ready."""
        with self.hub_api(token) as hub:
            response = hub.post(f"users/{username}/server",
                                headers={"Accept-Language": accept_language} if accept_language else None)
            already = response.status_code == 400 and "already running" in response.text
            assert response.status_code in (201, 202) or already, response.text
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                server = hub.get(f"users/{username}").json()["servers"].get("", {})
                if server.get("ready"):
                    return
                time.sleep(0.5)
        raise TimeoutError(f"{username}'s server was not ready in {timeout} s\n{self.log()[-4000:]}")

    def run_in_kernel(self, username: str, token: str, code: str, timeout: float = 60) -> dict[str, Any]:
        """Start a kernel in the user's server, run ``code``, return stdout, errors and the reply."""
        with httpx.Client(base_url=f"{self.url}/user/{username}/api/", timeout=60,
                          headers={"Authorization": f"token {token}"}) as server:
            kernel = server.post("kernels", json={"name": "aitip-python"})
            assert kernel.status_code == 201, kernel.text
            kernel_id = kernel.json()["id"]
            try:
                return asyncio.run(self._execute(username, token, kernel_id, code, timeout))
            finally:
                server.delete(f"kernels/{kernel_id}")

    async def _execute(self, username: str, token: str, kernel_id: str, code: str, timeout: float) -> dict[str, Any]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        ws_url = self.url.replace("http://", "ws://") + f"/user/{username}/api/kernels/{kernel_id}/channels"
        connection = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))
        msg_id = uuid.uuid4().hex
        connection.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": username, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        result: dict[str, Any] = {"stdout": "", "stderr": "", "error": None, "reply": None}
        deadline = time.monotonic() + timeout
        idle = False  # the reply (shell) can arrive before the last output (iopub): the kernel's idle comes after it
        while result["reply"] is None or not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no execute_reply and idle status within {timeout} s: {result}")
            raw = await asyncio.wait_for(connection.read_message(), remaining)
            if raw is None:
                raise ConnectionError("kernel websocket closed")
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                result[content["name"]] += content["text"]
            elif kind == "error":
                result["error"] = "\n".join(content["traceback"])
            elif kind == "execute_reply":
                result["reply"] = content
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        connection.close()
        return result

    def wait_for_job(self, token: str, job_id: int, states: set[str], timeout: float = 240) -> dict[str, Any]:
        """Poll the API until the job is in one of ``states``; its last reading otherwise fails."""
        deadline = time.monotonic() + timeout
        with self.api(token) as api:
            while True:
                job = api.get(f"jobs/{job_id}").json()
                if job["state"] in states:
                    return job  # type: ignore[no-any-return]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} is {job['state']}, not {sorted(states)}, after {timeout} s: "
                                       f"{job.get('reason')}")
                time.sleep(0.5)

    # ----- teardown -----

    def stop(self, timeout: float = 60) -> tuple[int, list[int]]:
        """SIGTERM, as Ctrl-C or a service manager would; returns (exit status, processes left)."""
        if self._admin_http is not None:
            self._admin_http.close()
        tree = descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        time.sleep(0.5)
        left = [pid for pid in tree if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
        return code, left


def start_platform(home: Path, *, timeout: float = 120, environment: dict[str, str] | None = None) -> RunningPlatform:
    """``environment`` overrides the test settings (benchmarks keep the production defaults)."""
    port = free_port()
    password = "Adm1n-" + uuid.uuid4().hex[:10]
    env = {**os.environ, "AITIP_HOME": str(home), "AITIP_PORT": str(port), "AITIP_ADMIN_USER": "admin",
           "AITIP_ADMIN_PASSWORD": password, "PYTHONUNBUFFERED": "1",
           **(environment or {})}
    env.pop("AITIP_CATALOG_URL", None)
    if "AITIP_SHARED_ACCOUNT" not in (environment or {}):
        env.pop("AITIP_SHARED_ACCOUNT", None)  # as root: every user a Linux account, as in production
    log_path = home / "platform.log"
    home.mkdir(parents=True, exist_ok=True)
    open_to_all_accounts(home)
    log = log_path.open("wb")
    process = subprocess.Popen([str(VENV_BIN / "aitip"), "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    platform = RunningPlatform(url=f"http://127.0.0.1:{port}", home=home, admin_user="admin",
                               admin_password=password, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"aitip up exited with {process.returncode}:\n{platform.log()[-4000:]}")
        if "AITIP is up at" in platform.log():
            return platform
        time.sleep(0.3)
    platform.stop()
    raise TimeoutError(f"aitip up was not ready in {timeout} s:\n{platform.log()[-4000:]}")
