"""Dataset quality reports and the data-quality gate, one module per concern:

- ``models``: the rules (``QualityRules``) and the reports (``QualityReport``, ``ImageFolderReport``);
- ``tabular``: ``compute_quality_report``, a Parquet/CSV/JSONL file profiled with DuckDB and numpy in a
  memory budget (its docstring holds the report's definitions), helped by ``columns`` (the SQL view of
  the columns and the scans over all of them), ``lanes`` (the per-column work run two at a time) and
  ``numeric`` (order statistics, outliers and histograms);
- ``images``: ``image_folder_report``, a folder of class folders read with Pillow;
- ``gate``: ``evaluate_gate`` and ``check_quality`` (a report and its gate's verdict);
- ``isolated``: ``check_quality_isolated``, the same in a child process, for untrusted files.
"""

from __future__ import annotations

from ..tabular import DatasetFormatError
from .gate import GateResult, RuleResult, check_quality, evaluate_gate
from .images import image_folder_report
from .isolated import check_quality_isolated
from .models import ClassBalance, ColumnReport, ImageFolderReport, OutlierRule, QualityReport, QualityRules
from .tabular import compute_quality_report

__all__ = [
    "ClassBalance", "ColumnReport", "DatasetFormatError", "GateResult", "ImageFolderReport", "OutlierRule",
    "QualityReport", "QualityRules", "RuleResult", "check_quality", "check_quality_isolated", "compute_quality_report",
    "evaluate_gate", "image_folder_report",
]
