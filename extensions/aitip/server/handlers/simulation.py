"""The simulation operation REST serves with a handler of its own: a stored security assessment as a file (HTML to read in
the browser, PDF to download), in the caller's language."""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...simulation.models import ReportQuery
from ...i18n import COOKIE, negotiate
from ...operations.binding import convert_path, running_service
from .base import AitipHandler

MEDIA_TYPES = {"html": "text/html; charset=UTF-8", "pdf": "application/pdf"}


class SimulationReportHandler(AitipHandler):
    @web.authenticated
    @authorized
    async def get(self, project: str, simulation: str) -> None:
        query = self.query(ReportQuery)
        values = convert_path(self.operation, self.path_kwargs)  # type: ignore[arg-type]
        service = running_service(self.context, "simulations")
        language = query.lang or negotiate(self.request.headers.get("Accept-Language"),
                                           self.get_cookie(COOKIE))
        path = await service.report_path(self.principal, project, values["simulation"], query.format, language,
                                         action=self.operation.action)
        disposition = "inline" if query.format == "html" else "attachment"
        self.set_header("Content-Disposition", f'{disposition}; filename="simulation-{simulation}.{query.format}"')
        if query.format == "html":  # the report's own styles and inline images only
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                            "img-src data:; frame-ancestors 'self'")
        # APIHandler.finish sets the Content-Type it is given (JSON unless told).
        self.finish(await asyncio.to_thread(path.read_bytes), set_content_type=MEDIA_TYPES[query.format])
