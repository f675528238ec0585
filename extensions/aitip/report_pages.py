"""What every printed report of the platform shares: numbers and dates as a person reads them, the Jinja
environment of ``templates/reports`` in one language, the translated page counter of the footer, and the
printing of the page to PDF by WeasyPrint with nothing fetched but the report's own inline PNG pictures.

A report is one self-contained HTML file (styles, SVG charts and pictures inline) that a browser shows as it is
and WeasyPrint prints to A4, so that both say the same.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .atomic_files import write_atomic
from .i18n import Translator, translator
from .report_charts import finite

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "reports"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DATA_URL = "data:image/png;base64,"


def number(value: Any, digits: int = 4) -> str:
    """A metric as a person reads it: integers with thousands separators, others to ``digits`` significant digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    value = finite(value)
    if value is None:
        return "–"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` where it is a dict, else an empty one: any part of a record or result may be missing or malformed."""
    return value if isinstance(value, dict) else {}


def moment(text: Any) -> str:
    """An ISO timestamp as ``2026-12-05 03:00 UTC`` (the platform writes UTC); anything else as it is."""
    if not isinstance(text, str) or not text:
        return "–"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    offset = when.utcoffset()
    zone = "UTC" if offset is not None and not offset else when.strftime("%z") if offset is not None else ""
    return f"{when:%Y-%m-%d %H:%M} {zone}".strip()


def css_string(text: str) -> str:
    """``text`` as a CSS string literal that cannot end the string or the <style> element."""
    return '"' + "".join(c if c.isalnum() or c in " ·:/,.()-，：" else f"\\{ord(c):x} " for c in text) + '"'


def page_counter(_: Translator) -> Markup:
    """CSS ``content`` for the footer: the translated "Page {page} of {pages}" with the page counters in it."""
    parts = re.split(r"(\{page\}|\{pages\})", _("Page {page} of {pages}"))
    pieces = [{"{page}": "counter(page)", "{pages}": "counter(pages)"}.get(part) or css_string(part)
              for part in parts if part]
    return Markup(" ".join(pieces))


@lru_cache(maxsize=None)
def environment(language: str) -> Environment:
    """The report templates' environment in ``language``: autoescaped, strict about undefined names."""
    loaded = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                         extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    _ = translator(language)
    loaded.install_gettext_callables(_.gettext, _.ngettext, newstyle=True)  # type: ignore[attr-defined]
    return loaded


def png_data_url(encoded: Any) -> str | None:
    """A PNG given as base64 (what a notebook publishes) as a ``data:`` URL the report embeds, or None where it
    is not base64 of a PNG: the URL is rebuilt from the decoded bytes, so nothing but the picture reaches the
    page."""
    if not isinstance(encoded, str) or not encoded:
        return None
    try:
        data = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return PNG_DATA_URL + base64.b64encode(data).decode("ascii") if data.startswith(PNG_SIGNATURE) else None


def _inline_png_fetcher() -> Any:
    """WeasyPrint's URL fetcher for reports: a report is self-contained, so the only URL it may open is one of
    its own inline PNGs; any other fetch is a bug (or an attack) and stops the printing."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class InlinePngFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            if url.startswith(PNG_DATA_URL):
                data = base64.b64decode(url[len(PNG_DATA_URL):], validate=True)
                if data.startswith(PNG_SIGNATURE):
                    return URLFetcherResponse(url, data, {"Content-Type": "image/png"})
            raise ValueError(f"a report fetches nothing but its inline PNGs, not {url[:80]!r}")

    return InlinePngFetcher(fail_on_errors=True)


def html_to_pdf(html: str) -> bytes:
    """The page printed to A4 (the page size is the template's) by WeasyPrint."""
    from weasyprint import HTML  # imported here: only PDF rendering needs it and its native libraries

    return HTML(string=html, url_fetcher=_inline_png_fetcher()).write_pdf()


def write_pair(html: str, directory: Path, language: str) -> tuple[Path, Path]:
    """Writes ``report.<language>.html`` and ``report.<language>.pdf`` into ``directory``, each atomically, so a
    reader sees the old report or the new one, never half of one."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = directory / f"report.{language}.html", directory / f"report.{language}.pdf"
    pdf = html_to_pdf(html)
    write_atomic(html_path, html.encode("utf-8"), mode=0o644)  # readable as an ordinary file
    write_atomic(pdf_path, pdf, mode=0o644)
    return html_path, pdf_path
