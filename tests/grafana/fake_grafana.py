"""A Grafana HTTP API test server (aiohttp) for the calls mcobs makes.

It answers as Grafana's HTTP API documents: folders (`/api/folders`),
datasources (`/api/datasources`, `/api/datasources/uid/{uid}`), dashboards
(`POST /api/dashboards/db`, `GET /api/dashboards/uid/{uid}`) and annotations
(`POST /api/annotations`), with bearer-token (service account) auth: 401
without the token, 404 with `{"message": ...}`, 409 on duplicates, and 412
`version-mismatch` when a dashboard is saved with a stale `version` and
`overwrite: false`.

Every request's method, path and body shape is checked; a request Grafana
would reject is answered as Grafana would (400) *and* recorded in `problems`,
which the fixture asserts empty, so a client bug cannot hide behind a
friendly fake.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Json = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")
NOW = "2026-01-01T00:00:00Z"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _error(code: int, message: str, **extra: Any) -> web.Response:
    """Grafana's error body: `{"message": ...}`, sometimes with a `status` word."""
    return web.json_response({"message": message, **extra}, status=code)


@dataclass
class StoredDashboard:
    dashboard: Json
    folder_uid: str
    version: int
    id: int


@dataclass
class FakeGrafana:
    token: str = "glsa_test-service-account-token"
    url: str = ""
    """Set by the fixture once the server listens."""
    folders: dict[str, Json] = field(default_factory=dict)
    datasources: dict[str, Json] = field(default_factory=dict)
    dashboards: dict[str, StoredDashboard] = field(default_factory=dict)
    annotations: list[Json] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every request, authorised or not."""
    problems: list[str] = field(default_factory=list)
    """Requests Grafana would reject as malformed; a correct client leaves this empty."""
    edit_before_save: set[str] = field(default_factory=set)
    """Dashboard uids a person saves in the UI just before the next API save reaches them."""
    fail_annotations: int = 0
    """Answer this many annotation posts with 500 before accepting them."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- server -------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log, self._auth])
        app.add_routes(
            [
                web.get("/api/folders/{uid}", self.get_folder),
                web.post("/api/folders", self.create_folder),
                web.put("/api/folders/{uid}", self.update_folder),
                web.get("/api/datasources/uid/{uid}", self.get_datasource),
                web.post("/api/datasources", self.create_datasource),
                web.put("/api/datasources/uid/{uid}", self.update_datasource),
                web.get("/api/dashboards/uid/{uid}", self.get_dashboard),
                web.post("/api/dashboards/db", self.save_dashboard),
                web.post("/api/annotations", self.add_annotation),
            ]
        )
        return app

    @web.middleware
    async def _log(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _error(404, "Not found")
        except web.HTTPMethodNotAllowed:
            self.problems.append(f"{request.method} {request.path}: method not allowed")
            return _error(405, "Method not allowed")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {
                    "extra": None,
                    "message": "Unauthorized",
                    "messageId": "auth.unauthorized",
                    "statusCode": 401,
                    "traceID": "",
                },
                status=401,
            )
        return await handler(request)

    async def _body(self, request: web.Request) -> Json | web.Response:
        where = f"{request.method} {request.path}"
        if not request.content_type.startswith("application/json"):
            self.problems.append(f"{where}: content type {request.content_type!r}")
            return _error(400, "bad request data")
        try:
            body = json.loads(await request.text())
        except ValueError:
            self.problems.append(f"{where}: body is not JSON")
            return _error(400, "bad request data")
        if not isinstance(body, dict):
            self.problems.append(f"{where}: body is not a JSON object")
            return _error(400, "bad request data")
        return body

    def _reject(self, request: web.Request, reason: str, status: int = 400) -> web.Response:
        self.problems.append(f"{request.method} {request.path}: {reason}")
        return _error(status, reason)

    # -- folders ------------------------------------------------------------------

    def _folder_json(self, folder: Json) -> Json:
        return {
            **folder,
            "url": f"/dashboards/f/{folder['uid']}/{_slug(folder['title'])}",
            "hasAcl": False,
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canDelete": True,
            "createdBy": "sa-mcobs",
            "created": NOW,
            "updatedBy": "sa-mcobs",
            "updated": NOW,
        }

    async def get_folder(self, request: web.Request) -> web.Response:
        folder = self.folders.get(request.match_info["uid"])
        if folder is None:
            return _error(404, "folder not found", status="not-found")
        return web.json_response(self._folder_json(folder))

    async def create_folder(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        title, uid = body.get("title"), body.get("uid")
        if not isinstance(title, str) or not title.strip():
            return self._reject(request, "folder title cannot be empty")
        if uid is not None and (not isinstance(uid, str) or not UID.match(uid)):
            return self._reject(request, "uid contains illegal characters or is too long")
        if uid in self.folders:
            return _error(409, "a folder with the same uid already exists")
        if any(f["title"] == title for f in self.folders.values()):
            return _error(409, "a folder with the same name already exists")
        uid = uid or f"f{next(self._ids)}"
        self.folders[uid] = {"id": next(self._ids), "uid": uid, "title": title, "version": 1}
        return web.json_response(self._folder_json(self.folders[uid]))

    async def update_folder(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        folder = self.folders.get(request.match_info["uid"])
        if folder is None:
            return _error(404, "folder not found", status="not-found")
        title, version = body.get("title"), body.get("version")
        if not isinstance(title, str) or not title.strip():
            return self._reject(request, "folder title cannot be empty")
        if not isinstance(version, int) and not body.get("overwrite"):
            return self._reject(request, "version is required unless overwrite is set")
        if not body.get("overwrite") and version != folder["version"]:
            return _error(
                412, "the folder has been changed by someone else", status="version-mismatch"
            )
        folder.update(title=title, version=folder["version"] + 1)
        return web.json_response(self._folder_json(folder))

    # -- datasources -----------------------------------------------------------------

    def _datasource_json(self, source: Json) -> Json:
        return {
            "orgId": 1,
            "typeLogoUrl": f"public/app/plugins/datasource/{source['type']}/img/logo.svg",
            "user": "",
            "database": "",
            "basicAuth": False,
            "basicAuthUser": "",
            "withCredentials": False,
            "secureJsonFields": {},
            "readOnly": False,
            **source,
        }

    def _check_datasource(self, request: web.Request, body: Json) -> web.Response | None:
        for key in ("name", "type", "access"):
            if not isinstance(body.get(key), str) or not body[key]:
                return self._reject(request, f"{key} is required")
        if body["access"] not in ("proxy", "direct"):
            return self._reject(request, f"access {body['access']!r} is not proxy or direct")
        for key, kind in (("url", str), ("uid", str), ("isDefault", bool), ("jsonData", dict)):
            if key in body and not isinstance(body[key], kind):
                return self._reject(request, f"{key} must be a {kind.__name__}")
        if "uid" in body and not UID.match(body["uid"]):
            return self._reject(request, "uid contains illegal characters or is too long")
        return None

    async def get_datasource(self, request: web.Request) -> web.Response:
        source = self.datasources.get(request.match_info["uid"])
        if source is None:
            return _error(404, "Data source not found")
        return web.json_response(self._datasource_json(source))

    async def create_datasource(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        rejected = self._check_datasource(request, body)
        if rejected is not None:
            return rejected
        if any(s["name"] == body["name"] for s in self.datasources.values()):
            return _error(409, "data source with the same name already exists")
        uid = body.get("uid") or f"ds{next(self._ids)}"
        if uid in self.datasources:
            return _error(409, "data source with the same uid already exists")
        source = {
            "id": next(self._ids),
            "uid": uid,
            "name": body["name"],
            "type": body["type"],
            "access": body["access"],
            "url": body.get("url", ""),
            "isDefault": body.get("isDefault", False),
            "jsonData": body.get("jsonData", {}),
            "version": 1,
        }
        self.datasources[uid] = source
        return web.json_response(
            {
                "datasource": self._datasource_json(source),
                "id": source["id"],
                "message": "Datasource added",
                "name": source["name"],
            }
        )

    async def update_datasource(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        source = self.datasources.get(request.match_info["uid"])
        if source is None:
            return _error(404, "Data source not found")
        rejected = self._check_datasource(request, body)
        if rejected is not None:
            return rejected
        if body.get("uid", source["uid"]) != source["uid"]:
            return self._reject(request, "uid in the body differs from the path")
        if isinstance(body.get("version"), int) and body["version"] != source["version"]:
            return _error(
                409,
                "Datasource has already been updated by someone else. Please reload and try again",
            )
        if any(s["name"] == body["name"] and s is not source for s in self.datasources.values()):
            return _error(409, "data source with the same name already exists")
        source.update(
            name=body["name"],
            type=body["type"],
            access=body["access"],
            url=body.get("url", ""),
            isDefault=body.get("isDefault", False),
            jsonData=body.get("jsonData", {}),
            version=source["version"] + 1,
        )
        return web.json_response(
            {
                "datasource": self._datasource_json(source),
                "id": source["id"],
                "message": "Datasource updated",
                "name": source["name"],
            }
        )

    # -- dashboards -------------------------------------------------------------------

    async def get_dashboard(self, request: web.Request) -> web.Response:
        stored = self.dashboards.get(request.match_info["uid"])
        if stored is None:
            return _error(404, "Dashboard not found", status="not-found")
        dashboard = copy.deepcopy(stored.dashboard)
        slug = _slug(dashboard["title"])
        folder = self.folders.get(stored.folder_uid)
        meta = {
            "type": "db",
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canStar": True,
            "canDelete": True,
            "slug": slug,
            "url": f"/d/{dashboard['uid']}/{slug}",
            "expires": "0001-01-01T00:00:00Z",
            "created": NOW,
            "updated": NOW,
            "updatedBy": "sa-mcobs",
            "createdBy": "sa-mcobs",
            "version": stored.version,
            "hasAcl": False,
            "isFolder": False,
            "folderId": folder["id"] if folder else 0,
            "folderUid": stored.folder_uid,
            "folderTitle": folder["title"] if folder else "Dashboards",
            "folderUrl": f"/dashboards/f/{stored.folder_uid}/" if folder else "",
            "provisioned": False,
            "provisionedExternalId": "",
        }
        return web.json_response({"dashboard": dashboard, "meta": meta})

    async def save_dashboard(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        dashboard = body.get("dashboard")
        if not isinstance(dashboard, dict):
            return self._reject(request, "dashboard is required")
        for key, kind in (("folderUid", str), ("overwrite", bool), ("message", str)):
            if key in body and not isinstance(body[key], kind):
                return self._reject(request, f"{key} must be a {kind.__name__}")
        title = dashboard.get("title")
        if not isinstance(title, str) or not title.strip():
            return _error(400, "Dashboard title cannot be empty", status="empty-name")
        uid = dashboard.get("uid")
        if not isinstance(uid, str) or not UID.match(uid):
            return self._reject(request, "dashboard uid must be 1-40 letters, digits, - or _")
        posted_version = dashboard.get("version", 0)
        if posted_version is not None and not isinstance(posted_version, int):
            return self._reject(request, "dashboard version must be a number")
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in self.folders:
            return _error(400, "folder not found", status="not-found")
        overwrite = body.get("overwrite", False)
        if uid in self.edit_before_save:
            self.edit_before_save.discard(uid)
            self.edit_dashboard(uid)
        existing = self.dashboards.get(uid)
        if existing is not None and (posted_version or 0) != existing.version and not overwrite:
            return _error(
                412, "The dashboard has been changed by someone else", status="version-mismatch"
            )
        same_name = [
            d
            for u, d in self.dashboards.items()
            if u != uid and d.folder_uid == folder_uid and d.dashboard["title"] == title
        ]
        if same_name and not overwrite:
            return _error(
                412,
                "A dashboard with the same name in the folder already exists",
                status="name-exists",
            )
        version = existing.version + 1 if existing else 1
        ident = existing.id if existing else next(self._ids)
        saved = {**copy.deepcopy(dashboard), "id": ident, "uid": uid, "version": version}
        self.dashboards[uid] = StoredDashboard(saved, folder_uid, version, ident)
        slug = _slug(title)
        return web.json_response(
            {
                "id": ident,
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "status": "success",
                "version": version,
                "slug": slug,
                "folderUid": folder_uid,
            }
        )

    def edit_dashboard(self, uid: str, **changes: Any) -> None:
        """What a person saving the dashboard in Grafana's UI does: new content, version + 1."""
        stored = self.dashboards[uid]
        stored.version += 1
        stored.dashboard = {**stored.dashboard, **changes, "version": stored.version}

    # -- annotations ---------------------------------------------------------------------

    async def add_annotation(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return self._reject(
                request, "Failed to save annotation: text field should not be empty"
            )
        for key in ("time", "timeEnd", "dashboardId", "panelId"):
            if body.get(key) is not None and not isinstance(body[key], int):
                return self._reject(request, f"{key} must be an integer")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return self._reject(request, "tags must be a list of strings")
        if self.fail_annotations > 0:
            self.fail_annotations -= 1
            return _error(500, "Failed to save annotation")
        ident = next(self._ids)
        self.annotations.append({**body, "id": ident})
        return web.json_response({"message": "Annotation added", "id": ident})
