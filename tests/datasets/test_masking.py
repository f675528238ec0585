"""Masking outside the DuckDB query (quality reports, annotation items and keys) equals masking inside it
(previews, downloads): the same salted hash of the same value, the same redaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from aitip.datasets.masking import mask_quality_report, mask_row, mask_value
from aitip.datasets.quality import compute_quality_report
from aitip.datasets.tabular import masked_preview

CSV = (b"text,number,flag,ratio,day\n"
       b"ann@example.org,987654321,true,0.5,2024-01-02\n"
       b"b\xc3\xa9a,-12,false,12345.678,1999-12-31\n"
       b",7,,,\n")


@pytest.mark.parametrize("method", ["hash", "redact"])
def test_python_masking_equals_the_query_masking(tmp_path: Path, method: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(CSV)
    columns, raw_rows, _ = masked_preview(path, "csv", 10, {}, "")
    masks = dict.fromkeys(columns, method)
    _, masked_rows, masked = masked_preview(path, "csv", 10, masks, "salt-1")
    assert masked == columns
    for raw, shown in zip(raw_rows, masked_rows, strict=True):
        assert list(mask_row(dict(zip(columns, raw, strict=True)), masks, "salt-1").values()) == shown
    assert mask_value("x", "hash", "salt-1") != mask_value("x", "hash", "salt-2")


def test_a_masked_report_keeps_counts_and_carries_no_values(tmp_path: Path) -> None:
    import json

    path = tmp_path / "d.csv"
    path.write_bytes(CSV)
    report = compute_quality_report(path, "csv").model_dump(mode="json")
    masked, columns = mask_quality_report(report, {"text": "hash", "number": "redact", "ratio": "hash",
                                                   "day": "hash", "flag": "redact"}, "s")
    assert columns == ["text", "number", "flag", "ratio", "day"]
    text = json.dumps(masked)
    for raw in ("ann@example.org", "béa", "987654321", "12345.678", "2024-01-02", "1999-12-31", "-12"):
        assert raw not in text, raw
    for before, after in zip(report["columns"], masked["columns"], strict=True):
        assert (before["null_count"], before["distinct_count"]) == (after["null_count"], after["distinct_count"])
    by_name = {c["name"]: c for c in masked["columns"]}
    assert by_name["text"]["top_values"] == [{"value": mask_value(v["value"], "hash", "s"), "count": v["count"]}
                                            for v in report["columns"][0]["top_values"]]
    assert by_name["flag"]["top_values"] is None and by_name["number"]["numeric"]["count"] == 3
    assert report["columns"][0]["top_values"][0]["value"] in ("ann@example.org", "béa")  # the stored one is whole
