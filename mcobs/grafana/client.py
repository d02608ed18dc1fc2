"""A typed adapter over `grafana-client` for the few Grafana HTTP API calls mcobs makes.

`grafana-client` is synchronous (HTTP through niquests): provisioning is a
plain synchronous CLI step, and the annotator runs these calls in a worker
thread. Every failure becomes a `GrafanaError` with the HTTP status and
Grafana's message, never with the token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException, TokenAuth

from mcobs.grafana.stamp import Json

DEFAULT_TIMEOUT = 10.0


class GrafanaError(Exception):
    """A Grafana API call failed; `status` is 0 when no HTTP answer came back."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"HTTP {status}: {message}" if status else message)


def safe_url(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _message(error: GrafanaException, token: str) -> str:
    response = error.response
    message = response.get("message") if isinstance(response, dict) else None
    text = message if isinstance(message, str) else str(error.message)
    return text.replace(token, "<token>") if token else text


class Grafana:
    """The Grafana HTTP API at `url`, authenticated with a service account token."""

    def __init__(self, url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {safe_url(url)}")
        prefix = parts.path.strip("/")
        self.url = safe_url(url)
        self._token = token
        auth: Any = TokenAuth(token)  # type: ignore[no-untyped-call]
        self._api: Any = GrafanaApi(
            auth=auth,
            host=parts.hostname,
            port=parts.port,
            url_path_prefix=prefix + "/" if prefix else "",
            protocol=parts.scheme,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"Grafana({self.url!r})"

    def _call(self, method: str, path: str, body: Json | None = None) -> Json | None:
        """One request; None for 404, `GrafanaError` for every other failure."""
        client = self._api.client
        try:
            if body is None:
                result = getattr(client, method)(path)
            else:
                result = getattr(client, method)(path, json=body)
        except GrafanaException as error:
            if error.status_code == 404:
                return None
            raise GrafanaError(error.status_code, _message(error, self._token)) from None
        except OSError as error:  # niquests' connection errors are OSErrors
            text = str(error).replace(self._token, "<token>")
            raise GrafanaError(0, f"cannot reach Grafana: {text}") from None
        if not isinstance(result, dict):
            raise GrafanaError(0, f"{method} {path}: expected a JSON object")
        return result

    def _must(self, method: str, path: str, body: Json | None = None) -> Json:
        result = self._call(method, path, body)
        if result is None:
            raise GrafanaError(404, f"{method} {path}: not found")
        return result

    def get_folder(self, uid: str) -> Json | None:
        return self._call("GET", f"/folders/{uid}")

    def create_folder(self, uid: str, title: str) -> Json:
        return self._must("POST", "/folders", {"uid": uid, "title": title})

    def update_folder(self, uid: str, title: str, version: int) -> Json:
        return self._must("PUT", f"/folders/{uid}", {"title": title, "version": version})

    def get_datasource(self, uid: str) -> Json | None:
        return self._call("GET", f"/datasources/uid/{uid}")

    def create_datasource(self, body: Json) -> Json:
        return self._must("POST", "/datasources", body)

    def update_datasource(self, uid: str, body: Json) -> Json:
        return self._must("PUT", f"/datasources/uid/{uid}", body)

    def get_dashboard(self, uid: str) -> Json | None:
        """`{"dashboard": ..., "meta": ...}`, or None when there is no such dashboard."""
        return self._call("GET", f"/dashboards/uid/{uid}")

    def save_dashboard(
        self, dashboard: Json, *, folder_uid: str, overwrite: bool, message: str
    ) -> Json:
        body = {
            "dashboard": dashboard,
            "folderUid": folder_uid,
            "overwrite": overwrite,
            "message": message,
        }
        return self._must("POST", "/dashboards/db", body)

    def add_annotation(self, *, time_ms: int, tags: list[str], text: str) -> Json:
        """An organisation-wide annotation (shown by every dashboard that queries its tags)."""
        return self._must("POST", "/annotations", {"time": time_ms, "tags": tags, "text": text})

    def close(self) -> None:
        self._api.client.s.close()
