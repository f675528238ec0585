"""The report rows REST serves with a handler of their own: a domain's stored report (an evaluation's, a
simulation's security assessment) as a file — HTML to read in the browser, PDF to download — in the caller's
language."""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...i18n import COOKIE, negotiate
from ...operations.binding import convert_path, running_service
from ...schema import ReportQuery
from .base import AitipHandler

MEDIA_TYPES = {"html": "text/html; charset=UTF-8", "pdf": "application/pdf"}


class StoredReportHandler(AitipHandler):
    """``service`` answers ``report_path(principal, project, id, format, language, action=...)``; ``noun`` names
    the path parameter and the downloaded file."""

    service = ""
    noun = ""

    async def send_report(self, project: str, raw_id: str) -> None:
        query = self.query(ReportQuery)
        values = convert_path(self.operation, self.path_kwargs)  # type: ignore[arg-type]
        language = query.lang or negotiate(self.request.headers.get("Accept-Language"), self.get_cookie(COOKIE))
        path = await running_service(self.context, self.service).report_path(
            self.principal, project, values[self.noun], query.format, language, action=self.operation.action)
        disposition = "inline" if query.format == "html" else "attachment"
        self.set_header("Content-Disposition", f'{disposition}; filename="{self.noun}-{raw_id}.{query.format}"')
        if query.format == "html":  # the report's own styles and inline images only
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                            "img-src data:; frame-ancestors 'self'")
        # APIHandler.finish sets the Content-Type it is given (JSON unless told).
        self.finish(await asyncio.to_thread(path.read_bytes), set_content_type=MEDIA_TYPES[query.format])


class EvaluationReportHandler(StoredReportHandler):
    service, noun = "evaluations", "evaluation"

    @web.authenticated
    @authorized
    async def get(self, project: str, evaluation: str) -> None:
        await self.send_report(project, evaluation)


class SimulationReportHandler(StoredReportHandler):
    service, noun = "simulations", "simulation"

    @web.authenticated
    @authorized
    async def get(self, project: str, simulation: str) -> None:
        await self.send_report(project, simulation)
