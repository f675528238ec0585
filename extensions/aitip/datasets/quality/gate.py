"""The data-quality gate: every rule that is set, evaluated against a report, each with a verdict and a
message that says what failed; and ``check_quality``, a report and its gate in one call."""

from __future__ import annotations

import os
from typing import Any

from .images import image_folder_report
from .models import (
    MAX_CLASSES_LISTED,
    ClassBalance,
    ImageFolderReport,
    Number,
    QualityReport,
    QualityRules,
    _Model,
)
from .tabular import compute_quality_report


class RuleResult(_Model):
    rule: str
    column: str | None = None
    passed: bool
    observed: Number = None
    threshold: Number = None
    message: str


class GateResult(_Model):
    passed: bool
    results: list[RuleResult]

    @property
    def failures(self) -> list[RuleResult]:
        return [result for result in self.results if not result.passed]


def _result(rule: str, passed: bool, message: str, *, column: str | None = None, observed: Any = None,
            threshold: Any = None) -> RuleResult:
    return RuleResult(rule=rule, column=column, passed=passed, observed=observed, threshold=threshold,
                      message=message)


def _at_most(rule: str, what: str, observed: float | None, threshold: float, *,
             column: str | None = None) -> RuleResult:
    subject = f"{what} of column {column!r}" if column else what
    if observed is None:
        return _result(rule, False, f"{subject} could not be measured (no values)", column=column,
                       threshold=threshold)
    passed = observed <= threshold
    relation = "<=" if passed else ">"
    verdict = "ok" if passed else "too high"
    return _result(rule, passed, f"{subject} is {observed:.4g} {relation} {threshold:.4g} ({verdict})",
                   column=column, observed=observed, threshold=threshold)


def _missing_column(rule: str, column: str, available: list[str]) -> RuleResult:
    shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
    return _result(rule, False, f"{rule}: column {column!r} is not in the dataset (columns: {shown})", column=column)


def _not_applicable(rule: str, kind: str) -> RuleResult:
    where = "image folders" if kind == "table" else "tables"
    return _result(rule, False, f"{rule} applies to {where} only; remove it from this dataset's rules")


def evaluate_gate(report: QualityReport | ImageFolderReport, rules: QualityRules) -> GateResult:
    """Checks every rule that is set; a rule that cannot be evaluated fails with the reason."""
    if isinstance(report, ImageFolderReport):
        results = _image_results(report, rules)
    else:
        results = _table_results(report, rules)
    return GateResult(passed=all(result.passed for result in results), results=results)


def _row_and_class_results(rows: int, balance: ClassBalance | None, rules: QualityRules,
                           unit: str) -> list[RuleResult]:
    results = []
    if rules.min_rows is not None:
        passed = rows >= rules.min_rows
        results.append(_result("min_rows", passed, f"{rows} {unit} {'>=' if passed else '<'} {rules.min_rows} "
                               f"({'ok' if passed else 'too few'})", observed=rows, threshold=rules.min_rows))
    if rules.min_class_fraction is not None and balance is not None:
        observed = balance.min_class_fraction
        if observed is None:
            results.append(_result("min_class_fraction", False, "no classes found", column=balance.column,
                                   threshold=rules.min_class_fraction))
        else:
            smallest = balance.classes[-1].value if balance.class_count <= MAX_CLASSES_LISTED else "?"
            passed = observed >= rules.min_class_fraction
            results.append(_result(
                "min_class_fraction", passed,
                f"smallest class {smallest!r} has {observed:.4g} of the {unit} "
                f"{'>=' if passed else '<'} {rules.min_class_fraction:.4g} ({'ok' if passed else 'too rare'})",
                column=balance.column, observed=observed, threshold=rules.min_class_fraction))
    return results


def _image_results(report: ImageFolderReport, rules: QualityRules) -> list[RuleResult]:
    results = _row_and_class_results(report.image_count, report.class_balance, rules, "images")
    if rules.max_unreadable_fraction is not None:
        results.append(_at_most("max_unreadable_fraction", "unreadable image fraction",
                                report.unreadable_fraction or 0.0, rules.max_unreadable_fraction))
    tabular_only = {
        "required_columns": rules.required_columns, "max_null_fraction": rules.max_null_fraction,
        "max_null_fraction_by_column": rules.max_null_fraction_by_column,
        "max_duplicate_fraction": rules.max_duplicate_fraction, "max_outlier_fraction": rules.max_outlier_fraction,
        "declared_schema": rules.declared_schema, "label_column": rules.label_column,
    }
    results += [_not_applicable(rule, "image_folder") for rule, value in tabular_only.items()
                if value not in (None, [], {})]
    return results


def _table_results(report: QualityReport, rules: QualityRules) -> list[RuleResult]:
    names = [column.name for column in report.columns]
    results: list[RuleResult] = []
    label, balance = rules.label_column, None
    if label is not None and report.column(label) is None:
        results.append(_missing_column("label_column", label, names))
    elif label is not None and (report.class_balance is None or report.class_balance.column != label):
        results.append(_result("label_column", False, f"class balance of {label!r} was not computed: "
                               "pass the rules to compute_quality_report", column=label))
    elif label is not None:
        balance = report.class_balance
        results.append(_result("label_column", True, f"label column {label!r} has {balance.class_count} classes",
                               column=label, observed=balance.class_count))
    elif rules.min_class_fraction is not None:
        results.append(_result("min_class_fraction", False, "min_class_fraction needs label_column for a table",
                               threshold=rules.min_class_fraction))
    results += _row_and_class_results(report.row_count, balance, rules, "rows")
    for name in rules.required_columns:
        present = report.column(name) is not None
        results.append(_result("required_columns", True, f"column {name!r} is present", column=name)
                       if present else _missing_column("required_columns", name, names))
    if rules.max_null_fraction is not None:
        governed = [column for column in report.columns if column.name not in rules.max_null_fraction_by_column]
        worst = max(governed, key=lambda column: column.null_fraction or 0.0, default=None)
        observed = (worst.null_fraction or 0.0) if worst else 0.0
        result = _at_most("max_null_fraction", "largest missing fraction", observed, rules.max_null_fraction)
        offenders = [column.name for column in governed if (column.null_fraction or 0.0) > rules.max_null_fraction]
        if offenders:
            result.message += f"; over the limit: {', '.join(offenders[:20])}"
        elif worst is not None:
            result.message += f" (worst column: {worst.name!r})"
        results.append(result)
    for name, threshold in rules.max_null_fraction_by_column.items():
        column = report.column(name)
        results.append(_missing_column("max_null_fraction_by_column", name, names) if column is None else
                       _at_most("max_null_fraction_by_column", "missing fraction", column.null_fraction or 0.0,
                                threshold, column=name))
    if rules.max_duplicate_fraction is not None:
        results.append(_at_most("max_duplicate_fraction", "duplicate row fraction", report.duplicates.fraction or 0.0,
                                rules.max_duplicate_fraction))
    for name, outlier_rule in rules.max_outlier_fraction.items():
        column = report.column(name)
        if column is None:
            results.append(_missing_column("max_outlier_fraction", name, names))
        elif column.numeric is None:
            results.append(_result("max_outlier_fraction", False,
                                   f"column {name!r} is {column.kind}, not numeric: outliers are not defined",
                                   column=name, threshold=outlier_rule.max_fraction))
        else:
            observed = (column.numeric.iqr_outlier_fraction if outlier_rule.method == "iqr"
                        else column.numeric.zscore_outlier_fraction)
            results.append(_at_most("max_outlier_fraction", f"{outlier_rule.method} outlier fraction", observed,
                                    outlier_rule.max_fraction, column=name))
    for name, declared in rules.declared_schema.items():
        column = report.column(name)
        if column is None:
            results.append(_missing_column("declared_schema", name, names))
        elif column.declared_type != declared or column.type_violation_count is None:
            results.append(_result("declared_schema", False, f"type violations of {name!r} were not computed: "
                                   "pass the rules to compute_quality_report", column=name))
        else:
            result = _at_most("declared_schema", f"fraction of values not {declared}",
                              column.type_violation_fraction or 0.0, rules.max_type_violation_fraction, column=name)
            result.message += f"; {column.type_violation_count} violation(s), stored as {column.type}"
            results.append(result)
    if rules.max_unreadable_fraction is not None:
        results.append(_not_applicable("max_unreadable_fraction", "table"))
    return results


def check_quality(path: str | os.PathLike[str], fmt: str, rules: QualityRules | dict[str, Any] | None = None,
                  **options: Any) -> tuple[QualityReport | ImageFolderReport, GateResult]:
    """The registry's entry point: the report for a staged file (or unpacked image folder) and its gate.

    ``rules`` as a dict is validated here (pydantic ValidationError on bad rules).
    """
    rules = rules if isinstance(rules, QualityRules) else QualityRules.model_validate(rules or {})
    if fmt == "images":
        report: QualityReport | ImageFolderReport = image_folder_report(path, **options)
    else:
        report = compute_quality_report(path, fmt, rules, **options)  # type: ignore[arg-type]
    return report, evaluate_gate(report, rules)
