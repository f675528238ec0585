"""One serving replica: an HTTP server (a Unix socket behind the platform's router, or a TCP port in a pod)
that speaks the Open Inference Protocol and MLflow's scoring protocol for one loaded model version, checking
each request against the model's signature and batching concurrent requests.

    python -m aitip.serving.replica --model-dir DIR (--socket PATH | --port 8080) [--name NAME] ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from tornado import httpserver, netutil, web

from ..errors import Phrase
from ..i18n import N_, negotiate
from .batching import Batcher
from .loading import LoadedModel, LoadFailed, load
from .protocols import mlflow_answer, mlflow_input, oip_answer, oip_input
from .signature import BadInput

JSON = "application/json"


class ReplicaState:
    def __init__(self, model: LoadedModel, *, name: str, model_name: str, version: str, max_batch_size: int,
                 max_batch_wait_ms: float) -> None:
        self.model = model
        self.name = name
        self.model_name = model_name
        self.version = version
        self.batcher = Batcher(model.predict, max_batch_size=max_batch_size, max_wait_ms=max_batch_wait_ms)
        self.in_flight = 0
        self.draining = False

    def knows(self, name: str) -> bool:
        return name in (self.name, self.model_name)


class _Base(web.RequestHandler):
    state: ReplicaState

    def initialize(self, state: ReplicaState) -> None:
        self.state = state

    def prepare(self) -> None:
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None and self.request.connection.context.address_family != socket.AF_UNIX:
            stream.set_nodelay(True)  # a pod's TCP port: the answer's pieces go out at once (no Nagle wait)

    def answer(self, document: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON)
        self.finish(json.dumps(document, separators=(",", ":")))

    def check_xsrf_cookie(self) -> None:  # an API server: no cookies
        return

    def said(self, phrase: Phrase) -> str:
        """``phrase`` in the caller's language (the platform's router hands on what the caller reads)."""
        return phrase.in_language(negotiate(self.request.headers.get("Accept-Language")))

    def unknown_model(self, name: str) -> None:
        self.answer({"error": self.said(Phrase(N_("this endpoint serves {endpoint!r} (model {model!r}); no model "
                                                  "{name!r}"), endpoint=self.state.name,
                                               model=self.state.model_name, name=name))}, 404)


class Live(_Base):
    def get(self) -> None:
        self.answer({"live": True})


class Ready(_Base):
    def get(self, name: str | None = None, version: str | None = None) -> None:
        if name is not None and not self.state.knows(name):
            return self.unknown_model(name)
        ready = not self.state.draining
        self.answer({"ready": ready, "in_flight": self.state.in_flight}, 200 if ready else 503)


class ServerMetadata(_Base):
    def get(self) -> None:
        self.answer({"name": "aitip", "version": "2", "extensions": ["mlflow-invocations"]})


class ModelMetadata(_Base):
    def get(self, name: str, version: str | None = None) -> None:
        if not self.state.knows(name):
            return self.unknown_model(name)
        signature = self.state.model.signature
        inputs = []
        if signature.tensor is not None:
            from .protocols import NUMPY_TO_OIP

            inputs.append({"name": signature.tensor.name or "input",
                           "datatype": NUMPY_TO_OIP.get(signature.tensor.dtype, "BYTES"),
                           "shape": list(signature.tensor.shape)})
        inputs += [{"name": column.name, "datatype": column.type, "shape": [-1]} for column in signature.columns]
        self.answer({"name": self.state.name, "versions": [self.state.version], "platform": "aitip-" +
                     self.state.model.backend, "inputs": inputs, "outputs": signature.outputs,
                     "model": self.state.model_name, "flavor": self.state.model.flavor})


class _Predicting(_Base):
    async def predict(self, decode: Any) -> Any | None:
        state = self.state
        state.in_flight += 1
        try:
            try:
                rows = decode()
            except BadInput as error:
                self.refuse(error)
                return None
            try:
                return await state.batcher.submit(rows)
            except BadInput as error:
                self.refuse(error)
                return None
            except Exception as error:
                self.answer({"error": self.said(Phrase(N_("the model failed: {kind}: {error}"),
                                                       kind=type(error).__name__, error=str(error)))}, 500)
                return None
        finally:
            state.in_flight -= 1

    def refuse(self, error: BadInput) -> None:
        raise NotImplementedError


class Infer(_Predicting):
    async def post(self, name: str, version: str | None = None) -> None:
        if not self.state.knows(name):
            return self.unknown_model(name)
        signature = self.state.model.signature
        predictions = await self.predict(lambda: oip_input(self.request.body, signature))
        if predictions is not None:
            request_id = None
            if b'"id"' in self.request.body[:200]:
                request_id = json.loads(self.request.body).get("id")
            self.answer(oip_answer(predictions, self.state.name, self.state.version, request_id))

    def refuse(self, error: BadInput) -> None:
        self.answer({"error": self.said(error.phrase), "expected": error.expected}, 400)


class Invocations(_Predicting):
    async def post(self) -> None:
        signature = self.state.model.signature
        content_type = self.request.headers.get("Content-Type", JSON)
        predictions = await self.predict(lambda: mlflow_input(self.request.body, content_type, signature))
        if predictions is not None:
            self.answer(mlflow_answer(predictions))

    def refuse(self, error: BadInput) -> None:
        self.answer({"error_code": "BAD_REQUEST", "message": self.said(error.phrase), "expected": error.expected},
                    400)


class Ping(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish("\n")


class Version(_Base):
    def get(self) -> None:
        self.answer({"model": self.state.model_name, "version": self.state.version})


class NotFound(_Base):
    def prepare(self) -> None:
        self.answer({"error": self.said(Phrase(N_("no route {path!r}: this endpoint speaks the Open Inference "
                                                  "Protocol (/v2/...) and MLflow's /invocations"),
                                               path=self.request.path))}, 404)


def application(state: ReplicaState) -> web.Application:
    kwargs = {"state": state}
    model = r"/v2/models/([^/]+)(?:/versions/([^/]+))?"
    return web.Application([
        (r"/v2/health/live", Live, kwargs),
        (r"/v2/health/ready", Ready, kwargs),
        (r"/v2", ServerMetadata, kwargs),
        (model, ModelMetadata, kwargs),
        (model + r"/ready", Ready, kwargs),
        (model + r"/infer", Infer, kwargs),
        (r"/invocations", Invocations, kwargs),
        (r"/ping", Ping, kwargs),
        (r"/health", Ping, kwargs),
        (r"/version", Version, kwargs),
        (r".*", NotFound, kwargs),
    ], default_handler_class=None, compress_response=False)


async def serve(state: ReplicaState, listener: socket.socket, *, drain_seconds: float = 10.0,
                on_ready: Any = None) -> None:
    """Serve on ``listener`` until SIGTERM; then stop taking connections and let requests in flight finish."""
    server = httpserver.HTTPServer(application(state), xheaders=False, idle_connection_timeout=300)
    server.add_sockets([listener])
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    if on_ready is not None:
        on_ready()
    await stopping.wait()
    state.draining = True
    server.stop()
    deadline = loop.time() + drain_seconds
    while state.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await server.close_all_connections()


def listen(socket_path: str | None, port: int | None, host: str = "0.0.0.0") -> socket.socket:
    if socket_path:
        return netutil.bind_unix_socket(socket_path, mode=0o600, backlog=1024)
    return netutil.bind_sockets(port or 8080, host, family=socket.AF_INET, backlog=1024)[0]


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aitip.serving.replica", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="an MLflow model's directory")
    source.add_argument("--model-uri", help="an MLflow model URI (models:/name/version), downloaded first")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="a Unix socket to listen on")
    where.add_argument("--port", type=int, help="a TCP port to listen on")
    parser.add_argument("--name", default="model", help="the endpoint's name (OIP's model name)")
    parser.add_argument("--model-name", default="", help="the registered model's name (also accepted)")
    parser.add_argument("--version", default="1")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--backend", default="python")
    options = parser.parse_args(arguments)
    model_dir = options.model_dir
    if options.model_uri:
        import mlflow.artifacts

        model_dir = mlflow.artifacts.download_artifacts(artifact_uri=options.model_uri)
    try:
        model = load(Path(model_dir), options.backend)
    except LoadFailed as error:
        print(f"cannot serve: {error}", file=sys.stderr)
        return 3
    state = ReplicaState(model, name=options.name, model_name=options.model_name or options.name,
                         version=options.version, max_batch_size=options.max_batch_size,
                         max_batch_wait_ms=options.max_batch_wait_ms)
    listener = listen(options.socket, options.port)
    asyncio.run(serve(state, listener, on_ready=lambda: print(f"serving on {options.socket or options.port}",
                                                               file=sys.stderr, flush=True)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
