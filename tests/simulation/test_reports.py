"""The security assessment, HTML and PDF, in both languages, from the simulations of report_cases.py (numbers
computed there: an image classifier attacked, a weak chat service probed, a tabular model drifting). The PDFs are
read back with pypdf and drawn as pictures with pdftoppm (kept under test-artifacts/simulation-report/)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from aitip.i18n import translator
from aitip.simulation import reports
from tests.simulation.report_cases import (IMAGE_TEMPLATE, LLM_TEMPLATE, MD5, digits_simulation, llm_simulation, png,
                                           tabular_simulation)

LANGUAGES = ("en", "zh_CN")
ROOT = Path(__file__).resolve().parents[2]
PICTURES = ROOT / "test-artifacts" / "simulation-report"
TITLES = {"en": "Security assessment", "zh_CN": "安全评估报告"}
KINDS = {"image": digits_simulation, "llm": llm_simulation, "tabular": tabular_simulation}


@pytest.fixture(scope="module")
def cases() -> dict[str, tuple]:
    return {kind: build() for kind, build in KINDS.items()}


def html_of(case: tuple, language: str) -> str:
    simulation, template, result, verdict, previous = case
    return reports.render_html(simulation, template, result, verdict, previous=previous, locale=language)


def pdf_of(case: tuple, language: str) -> bytes:
    simulation, template, result, verdict, previous = case
    return reports.render_pdf(simulation, template, result, verdict, previous=previous, locale=language)


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def draw_pages(pdf: bytes, name: str) -> list[Path]:
    """Every page as a PNG (100 dpi) under test-artifacts/simulation-report/, to be looked at."""
    PICTURES.mkdir(parents=True, exist_ok=True)
    for old in PICTURES.glob(f"{name}-page-*.png"):
        old.unlink()
    source = PICTURES / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "100", str(source), str(PICTURES / f"{name}-page")], check=True,
                   timeout=120)
    return sorted(PICTURES.glob(f"{name}-page-*.png"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_assessment_names_the_evidence_and_says_the_verdict_first(cases: dict, language: str) -> None:
    result, verdict = cases["image"][2:4]
    html = html_of(cases["image"], language)
    _ = translator(language)
    assert f'<html lang="{language.replace("_", "-")}">' in html and TITLES[language] in html
    for exact in ("digits-logreg", MD5, "5e" * 32, "image_robustness@2", "<td>42</td>", "<td>carol</td>"):
        assert exact in html
    order = [html.index(f'<section class="{name}">') for name in ("what", "verdict", "curves", "conditions",
                                                                   "regressions", "gallery", "environment", "method")]
    assert order == sorted(order)
    assert not verdict["passed"] and _("The model fails this assessment.") in html
    for check in verdict["checks"]:
        assert check["threshold"] in unescape(html) and f"{check['value']:.3f}" in html
    failed = [check for check in verdict["checks"] if not check["passed"]] + \
        [row for row in verdict["regressions"] if not row["passed"]]
    assert html.count('class="pill failed"') == len(failed) >= 5
    assert html.count("<polyline") == 3  # noise; FGSM and PGD together on the ε chart; occlusion has one value
    assert html.count('stroke-dasharray="4 2.5"') == 4  # the thresholds on noise, FGSM and PGD (two)
    assert html.count('src="data:image/png;base64,') == 2 * len(result["examples"]) >= 6
    assert _("Regression against version %(version)s") % {"version": 1} in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_each_language_gives_the_reasons_in_its_own_words(cases: dict) -> None:
    english, chinese = (unescape(html_of(cases["image"], language)) for language in LANGUAGES)
    recorded = cases["image"][3]["reasons"][0]
    assert recorded in english and "未满足" not in english
    assert "未满足“accuracy under fgsm eps=0.1 >= 0.60”：实测值为 0.556。" in chinese
    assert recorded in chinese and "判定记录的原因（英文原文）" in chinese  # the judge's own words kept
    assert "高斯噪声 σ=0.2：当前 0.914，版本 1 为 0.939，变差 0.025，超出容差 0.020。" in chinese
    assert "对抗攻击" in chinese and "Adversarial attacks" in english
    assert "第 " in chinese and "页，共 " in chinese


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_pdf_carries_the_verdict_thresholds_and_identity(cases: dict, kind: str, language: str) -> None:
    from pypdf import PdfReader

    simulation, template, result, verdict, _previous = cases[kind]
    pdf = pdf_of(cases[kind], language)
    reader = PdfReader(io.BytesIO(pdf))
    text = compact("\n".join(page.extract_text() for page in reader.pages))
    assert 2 <= len(reader.pages) <= 6
    width, height = reader.pages[0].mediabox.upper_right
    assert (round(float(width)), round(float(height))) == (595, 842)  # A4
    _ = translator(language)
    verdict_words = _("The model passes this assessment.") if verdict["passed"] else \
        _("The model fails this assessment.")
    assert compact(TITLES[language]) in text and compact(verdict_words) in text
    for threshold in template["thresholds"]:
        assert compact(threshold) in text
    identity = ["chat.internal:8443"] if kind == "llm" else \
        [simulation["model"], simulation["dataset_md5"], compact(_("Model version"))]
    assert all(part in text for part in identity + [simulation["notebook_sha256"][:32]])
    if kind != "llm":
        assert f"{result['clean']:.3f}" in text
    if language == "zh_CN":
        assert "被测对象" in text and "结论" in text
    if kind == "image":  # the gallery's pictures are in the PDF
        assert sum(len(page.images) for page in reader.pages) >= 2 * len(result["examples"])
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the pages cannot be drawn as pictures")
    from PIL import Image

    pictures = draw_pages(pdf, f"{kind}-{language}")
    assert len(pictures) == len(reader.pages)
    for picture in pictures:
        with Image.open(picture) as page:
            inked = sum(page.convert("L").point(lambda value: value < 128).histogram()[1:])
            assert page.size == (827, 1170) and inked > 2000, f"{picture.name} is blank"


def test_text_from_the_model_under_test_stays_text(cases: dict) -> None:
    result = cases["llm"][2]
    html = html_of(cases["llm"], "en")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; PWNED" in html
    assert html.count("</style>") == 1
    leak = next(probe for probe in result["probes"] if probe["probe"] == "system_prompt")["response"]
    shown = reports.clip(leak, reports.RESPONSE_CHARACTERS)
    assert len(leak) > reports.RESPONSE_CHARACTERS and shown["more"] > 0 and shown["text"].endswith(" …")
    assert f"({shown['more']} more characters)" in html
    assert "s3cret" not in html and "abc123" not in html and "https://chat.internal:8443/v1/chat?…" in html
    assert reports._endpoint({"uri": "http://user:pw@host:99999/x?key=1"}) == "http://host:99999/x"
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf_of(cases["llm"], "en"))).pages)
    assert "<script>alert(1)</script>" in text  # printed as text, not run
    assert reports.clip("a\x1b[31mred\x00 text", 100) == {"text": "ared text", "more": 0}


def test_hostile_strings_are_escaped_everywhere(cases: dict) -> None:
    simulation, template, result, verdict, previous = cases["image"]
    hostile = "<img src=x onerror=alert(1)>"
    result = {**result, "conditions": [{**result["conditions"][-1], "details": {"note": hostile}}],
              "examples": [{**result["examples"][0], "label": hostile},
                           {**result["examples"][1],
                            "perturbed_png": base64.b64encode(b"<svg onload=alert(2)>").decode()}],
              "environment": {hostile: hostile}, "errors": [hostile]}
    template = {**template, "description": hostile, "conditions": [{"condition": hostile, "values": [1]}]}
    html = reports.render_html({**simulation, "model": hostile, "created_by": hostile}, template, result,
                               {**verdict, "reasons": [hostile]}, previous=previous, locale="zh_CN")
    assert "<img src=x" not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") >= 6
    assert "svg onload" not in html and "1 张图片无法按 PNG 读取，已略去。" in html
    assert html.count('src="data:image/png;base64,') == 2  # the picture that is not a PNG is left out


def test_a_report_fetches_nothing_but_its_own_pictures() -> None:
    from aitip.report_pages import html_to_pdf, png_data_url
    from weasyprint.urls import FatalURLFetchingError

    picture = png(np.eye(8).ravel())
    assert html_to_pdf(f'<img src="{png_data_url(picture)}">').startswith(b"%PDF-")
    for url in ("http://127.0.0.1:9/x.png", "file:///etc/passwd", "data:image/svg+xml;base64,PHN2Zz4="):
        with pytest.raises(FatalURLFetchingError):
            html_to_pdf(f'<img src="{url}">')
    assert png_data_url("not base64!") is None and png_data_url(base64.b64encode(b"GIF89a").decode()) is None


def test_tabular_drift_comes_largest_first_and_a_pass_says_so(cases: dict) -> None:
    html = unescape(html_of(cases["tabular"], "en"))
    features = re.findall(r'<td><code>([a-z ]+)</code></td><td class="num">', html)
    assert features[:2] == ["mean texture", "mean radius"] and len(features) == 30
    assert '<td class="level significant">significant</td>' in html and "moderate" in html
    assert "The model passes this assessment." in html and "Every threshold is met." in html
    assert 'class="regressions"' not in html and 'class="gallery"' not in html


def test_a_simulation_in_error_shows_why_and_no_verdict() -> None:
    simulation = {"id": 15, "model": None, "state": "error", "created_by": "dave",
                  "endpoint": {"uri": "http://127.0.0.1:9/chat", "headers": {"Authorization": "Bearer tok-9f2e"}},
                  "error": {"message": "the endpoint http://127.0.0.1:9/chat cannot be reached: connection refused"}}
    for language in LANGUAGES:
        html = reports.render_html(simulation, LLM_TEMPLATE, {}, {}, previous=None, locale=language)
        _ = translator(language)
        assert "connection refused" in html and _("No verdict was made: the simulation did not run to its end.") in html
        assert '<section class="verdict">' not in html and "tok-9f2e" not in html
    from pypdf import PdfReader

    assert len(PdfReader(io.BytesIO(reports.render_pdf(simulation, LLM_TEMPLATE, {}, {}, locale="en"))).pages) <= 2
    html = reports.render_html({**simulation, "endpoint": None}, IMAGE_TEMPLATE, {}, {}, locale="en")
    assert "ε ∈ 0.05, 0.1, 0.2" in html and "σ ∈ 0.1, 0.2, 0.3" in html  # the method names what was to run


def test_the_curves_put_every_epsilon_attack_on_one_chart(cases: dict) -> None:
    from aitip.simulation.report_charts import curves

    result, verdict = cases["image"][2], cases["image"][3]
    charts = curves(result, verdict["checks"], translator("en"))
    assert [chart["title"] for chart in charts] == ["Gaussian noise", "Adversarial attacks"]
    epsilon = charts[1]
    assert [line["label"] for line in epsilon["series"]] == ["FGSM", "PGD"]
    assert [tick["text"] for tick in epsilon["x_ticks"]] == ["0", "0.05", "0.1", "0.2"]
    start = epsilon["series"][0]["dots"][0]  # at ε = 0 the curve starts at the clean accuracy
    assert start == (epsilon["box"]["left"], round(8 + 180 * (1 - result["clean"]), 1))
    assert [line["colour"] for line in epsilon["references"]] == ["#cf222e"] * 3  # three thresholds, all failed


def test_write_reports_writes_both_files(cases: dict, tmp_path: Path) -> None:
    simulation, template, result, verdict, previous = cases["tabular"]
    html_path, pdf_path = reports.write_reports(simulation, template, result, verdict, tmp_path / "14",
                                                previous=previous, locale="zh-Hans")
    assert (html_path.name, pdf_path.name) == ("report.zh_CN.html", "report.zh_CN.pdf")
    assert "安全评估报告" in html_path.read_text(encoding="utf-8") and pdf_path.read_bytes().startswith(b"%PDF-")
    assert html_path.stat().st_mode & 0o777 == 0o644
