"""The quality package's data: a dataset's rules (``QualityRules``) and the reports a check produces
(``QualityReport`` for a table, ``ImageFolderReport`` for an image folder). Every number in a report is
finite or None."""

from __future__ import annotations

import math
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ...errors import InvalidValue

ColumnType = Literal["int", "float", "string", "bool", "date", "timestamp"]
TabularFormat = Literal["parquet", "csv", "jsonl"]

MAX_CLASSES_LISTED = 1000
MAX_UNREADABLE_LISTED = 100


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Number = Annotated[int | float | None, BeforeValidator(_finite_or_none)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _fraction(part: int | None, whole: int) -> float | None:
    if part is None or whole <= 0:
        return None
    return part / whole


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----- rules -----

class OutlierRule(_Model):
    """At most ``max_fraction`` of a numeric column's finite values may be outliers by ``method``."""

    method: Literal["iqr", "zscore"] = "iqr"
    max_fraction: Fraction


def _column_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidValue("column names must not be empty")
    return name


class QualityRules(_Model):
    """A dataset's data-quality gate: every threshold set here must hold for a version to register.

    Rules naming a column the data does not have fail when evaluated (they are never skipped).
    """

    min_rows: int | None = Field(None, ge=0, description="Fewest rows (images for an image folder)")
    required_columns: list[str] = Field(default_factory=list, description="Columns that must exist")
    max_null_fraction: Fraction | None = Field(None, description="Largest missing fraction in any column")
    max_null_fraction_by_column: dict[str, Fraction] = Field(
        default_factory=dict, description="Per-column missing-fraction limits; override max_null_fraction")
    max_duplicate_fraction: Fraction | None = Field(None, description="Largest fraction of duplicate rows")
    max_outlier_fraction: dict[str, OutlierRule] = Field(
        default_factory=dict, description="Per numeric column: outlier method and largest outlier fraction")
    declared_schema: dict[str, ColumnType] = Field(
        default_factory=dict, description="Expected type per column; values that do not convert are violations")
    max_type_violation_fraction: Fraction = Field(
        0.0, description="Largest fraction of a declared column's non-missing values that may violate its type")
    label_column: str | None = Field(None, description="The class label column, for class balance")
    min_class_fraction: Fraction | None = Field(
        None, description="Smallest share any class may have (of labelled rows, or of readable images)")
    max_unreadable_fraction: Fraction | None = Field(
        None, description="Image folders only: largest fraction of image files that cannot be read")

    @field_validator("required_columns")
    @classmethod
    def _required_columns_valid(cls, names: list[str]) -> list[str]:
        for name in names:
            _column_name(name)
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise InvalidValue("columns listed more than once: {repeated}", repeated=', '.join(repeated))
        return names

    @field_validator("max_null_fraction_by_column", "max_outlier_fraction", "declared_schema")
    @classmethod
    def _keys_are_column_names(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        for name in mapping:
            _column_name(name)
        return mapping

    @field_validator("label_column")
    @classmethod
    def _label_column_valid(cls, name: str | None) -> str | None:
        return None if name is None else _column_name(name)


# ----- reports -----

class Histogram(_Model):
    """Equal-width bins over the finite values; ``edges`` has one more entry than ``counts``."""

    edges: list[Number]
    counts: list[int]


class NumericStats(_Model):
    count: int = Field(description="Finite values the statistics are over")
    min: Number
    max: Number
    mean: Number
    std: Number
    quantiles: dict[str, Number] = Field(description="p1, p25, p50, p75, p99")
    iqr_lower_fence: Number
    iqr_upper_fence: Number
    iqr_outlier_count: int
    iqr_outlier_fraction: Number
    zscore_outlier_count: int
    zscore_outlier_fraction: Number
    histogram: Histogram | None


class ValueCount(_Model):
    value: str | bool | int | float | None
    count: int


class ColumnReport(_Model):
    name: str
    type: str = Field(description="The engine's type, e.g. BIGINT, DOUBLE, VARCHAR")
    kind: Literal["int", "float", "string", "bool", "date", "timestamp", "other"]
    null_count: int = Field(description="Missing values: NULL, and NaN in float columns")
    null_fraction: Number
    nan_count: int
    inf_count: int
    distinct_count: int | None
    distinct_exact: bool
    declared_type: ColumnType | None = None
    type_violation_count: int | None = None
    type_violation_fraction: Number = None
    numeric: NumericStats | None = None
    min_value: str | None = Field(None, description="Dates and timestamps: earliest, ISO 8601")
    max_value: str | None = Field(None, description="Dates and timestamps: latest, ISO 8601")
    top_values: list[ValueCount] | None = Field(None, description="Strings and booleans: most frequent values")


class ClassCount(_Model):
    value: str | bool | int | float | None
    count: int
    fraction: Number


class ClassBalance(_Model):
    column: str | None = Field(description="The label column; None for an image folder's class folders")
    class_count: int
    total: int = Field(description="Labelled rows (or readable images) the fractions are of")
    classes: list[ClassCount] = Field(description=f"Largest first, at most {MAX_CLASSES_LISTED}")
    min_class_fraction: Number
    max_class_fraction: Number


class Duplicates(_Model):
    count: int = Field(description="Rows equal to an earlier row")
    fraction: Number
    method: str = "64-bit row hash"


class EngineInfo(_Model):
    name: str
    version: str
    memory_limit_mb: int
    threads: int


class QualityReport(_Model):
    kind: Literal["table"] = "table"
    format: TabularFormat
    row_count: int
    column_count: int
    columns: list[ColumnReport]
    duplicates: Duplicates
    class_balance: ClassBalance | None
    distinct_method: Literal["hyperloglog", "exact"]
    quantile_method: Literal["exact", "tdigest"]
    engine: EngineInfo
    elapsed_seconds: float

    def column(self, name: str) -> ColumnReport | None:
        return next((column for column in self.columns if column.name == name), None)


class SizeStats(_Model):
    min: int | None
    max: int | None
    median: Number


class UnreadableFile(_Model):
    path: str = Field(description="Relative to the folder root")
    reason: str


class ImageFolderReport(_Model):
    kind: Literal["image_folder"] = "image_folder"
    image_count: int = Field(description="Readable images in class folders")
    file_count: int = Field(description="Files with an image suffix in class folders, readable or not")
    class_count: int
    class_balance: ClassBalance
    width: SizeStats
    height: SizeStats
    formats: dict[str, int]
    unreadable_count: int
    unreadable_fraction: Number
    unreadable: list[UnreadableFile] = Field(description=f"The first {MAX_UNREADABLE_LISTED}")
    ignored_files: int = Field(description="Files skipped: no image suffix, hidden, or outside class folders")
    elapsed_seconds: float

    @property
    def row_count(self) -> int:
        return self.image_count
