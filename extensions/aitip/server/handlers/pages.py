"""The platform's landing page: a browser signs in through the hub's OAuth here, after which the
same cookie authenticates its calls to the REST API."""

from __future__ import annotations

import os
from html import escape
from typing import ClassVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ... import __version__
from ..context import PlatformContext
from ..routes import API_PREFIX, RouteOperation

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AITIP platform</title>
<style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}}
code{{background:#f4f4f4;padding:.1rem .3rem}}</style></head>
<body><h1>AITIP platform <small>{version}</small></h1>
<p>Signed in as <strong id="user">{user}</strong>{admin}{groups}.</p>
<h2>Your projects</h2>{projects}
<h2>API</h2><p>REST under <code>{api}</code> &middot; <a href="{api}openapi.json">OpenAPI document</a>
&middot; <a href="{api}me">me</a> &middot; <a href="{hub}">JupyterHub home</a>
&middot; <a href="{dashboards}" id="dashboards">Dashboards</a></p>
</body></html>"""


class PlatformHomeHandler(ExtensionHandlerMixin, JupyterHandler):
    auth_resource = "aitip"
    operations: ClassVar[dict[str, RouteOperation]] = {
        "GET": RouteOperation("platform.me", "The platform's landing page (signs a browser in)")}

    @property
    def context(self) -> PlatformContext:
        return self.settings["aitip"]  # type: ignore[no-any-return]

    @web.authenticated
    @authorized
    async def get(self) -> None:
        user = self.current_user
        principal = await self.context.directory.principal(user.username, user)
        if principal is None or self.context.projects is None:
            raise web.HTTPError(403)
        me = await self.context.projects.me(principal)
        rows = "".join(
            f"<tr><td>{escape(p.project)}</td><td>{escape(p.display_name)}</td><td>{p.role.value}</td>"
            f"<td>{'archived' if p.archived else ''}</td></tr>" for p in me.projects)
        projects = (f"<table><tr><th>project</th><th>title</th><th>your role</th><th></th></tr>{rows}</table>"
                    if rows else "<p>None yet: <code>aitip projects create NAME</code>.</p>")
        hub_base = os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(_PAGE.format(
            version=__version__, user=escape(me.name), admin=" (hub admin)" if me.admin else "",
            groups=f", groups {escape(', '.join(me.groups))}" if me.groups else "", projects=projects,
            api=escape(self.base_url + API_PREFIX), hub=escape(hub_base + "/hub/home"),
            dashboards=escape(hub_base + "/services/dashboards/")))
