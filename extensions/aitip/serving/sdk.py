"""Calling an endpoint from Python: ``client.serving.predict("vision", "digits", rows)``. The endpoint's own
route (``<platform>/serve/<project>/<endpoint>/``) takes the caller's token or an endpoint API key; the
answer is the predictions, and ``last_version`` says which model version gave them. A request named by
``request_id`` can be scored later: ``client.serving.feedback("vision", "digits", {"order-7": 3})``."""

from __future__ import annotations

from typing import Any

import httpx

from ..client import API_PATH, AitipAPIError, Client


class ServingAPI:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.last_version: int | None = None

    def url(self, project: str, endpoint: str) -> str:
        base = self.client.url[:-len(API_PATH)] if self.client.url.endswith(API_PATH) else self.client.url
        return f"{base}serve/{project}/{endpoint}/"

    def call(self, project: str, endpoint: str, path: str, body: dict[str, Any] | None = None, *,
             api_key: str | None = None, route_key: str | None = None, request_id: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        """One request to the endpoint's ``path`` (``v2/models/<name>/infer``, ``invocations``, ``feedback``...)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}  # else the client's own token
        if route_key is not None:
            headers["X-Route-Key"] = route_key
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        url = self.url(project, endpoint) + path
        try:
            answer = self.client._http.request("POST" if body is not None else "GET", url, json=body,
                                               headers=headers, timeout=timeout)
        except httpx.HTTPError as error:
            raise AitipAPIError(503, "unreachable", f"cannot reach {url}: {error}") from error
        version = answer.headers.get("X-Model-Version")
        self.last_version = int(version) if version and version.isdigit() else None
        try:
            document = answer.json()
        except ValueError:
            document = {"error": answer.text[:500]}
        if answer.status_code >= 400:
            message = document.get("error") or document.get("message") or answer.reason_phrase
            raise AitipAPIError(answer.status_code, str(document.get("code") or document.get("error_code") or
                                                        "serving_error").lower(), str(message),
                                document.get("expected"))
        return document

    def predict(self, project: str, endpoint: str, rows: Any, *, protocol: str = "oip", version: int | None = None,
                api_key: str | None = None, route_key: str | None = None, request_id: str | None = None) -> list[Any]:
        """Predictions for ``rows`` (a list of rows, an array, or a DataFrame for ``protocol="mlflow"``); with
        ``request_id``, the answer is remembered for its true labels to be sent to :meth:`feedback`."""
        import numpy as np

        if protocol == "mlflow":
            if hasattr(rows, "to_dict"):
                body: dict[str, Any] = {"dataframe_split": rows.to_dict(orient="split", index=False)}
            else:
                body = {"inputs": np.asarray(rows).tolist()}
            return self.call(project, endpoint, "invocations", body, api_key=api_key, route_key=route_key,
                             request_id=request_id)["predictions"]
        array = np.asarray(rows)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        datatype = {"f": "FP64", "i": "INT64", "u": "UINT64", "b": "BOOL"}.get(array.dtype.kind, "BYTES")
        name = endpoint if version is None else f"{endpoint}/versions/{version}"
        answer = self.call(project, endpoint, f"v2/models/{name}/infer", {"inputs": [{
            "name": "input", "shape": list(array.shape), "datatype": datatype,
            "data": array.reshape(-1).tolist()}]}, api_key=api_key, route_key=route_key, request_id=request_id)
        return list(answer["outputs"][0]["data"])

    def feedback(self, project: str, endpoint: str, labels: dict[str, Any], *,
                 api_key: str | None = None) -> dict[str, Any]:
        """The true labels of answered requests, by their ``request_id`` (a list for a request of several rows):
        each answer is scored once for the version that gave it. Says how many were labelled and which ids were
        unknown (never answered, already labelled, or forgotten)."""
        return self.call(project, endpoint, "feedback", {"labels": labels}, api_key=api_key)
