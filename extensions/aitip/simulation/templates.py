"""Scenario templates: YAML documents naming the conditions a model is put under, the metric and the pass
thresholds. Parsed into :class:`Template` (pydantic, so every face reads the same constraints), with
``extends`` resolved against a lookup, the thresholds parsed into :class:`Threshold` and every condition
checked against the registry; what is wrong is a 422 naming the field."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import InvalidInput
from ..i18n import N_
from ..schema import RequestModel, Title, text
from ..shipped_notebooks import shipped_notebooks
from . import conditions as registry

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
REFERENCE_PATTERN = r"^[a-z][a-z0-9_]{0,63}(@[1-9][0-9]{0,8})?$"
MAX_VERSION = 999_999_999
MAX_TEMPLATE_BYTES = 256 * 1024
MAX_EXTENDS_DEPTH = 10
CLEAN = "clean"
# Each kind's metric; a custom notebook may name its own (higher is better unless it is attack_success_rate).
METRICS = {"image": "accuracy", "tabular": "accuracy", "llm": "attack_success_rate"}
LOWER_IS_BETTER = frozenset({"attack_success_rate"})
OPERATORS = (">=", "<=", ">", "<")
GRAMMAR = "<metric> under <condition>[ <parameter>=<value>] <op> <number>"
# Keys whose value is a mapping: a child template's keys replace the parent's one by one inside them.
MERGED_MAPPINGS = ("input", "regression", "limits")

Lookup = Callable[[str, "int | None"], "Mapping[str, Any] | str | None"]


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def _problem(message: str, code: str, field: str, **values: Any) -> InvalidInput:
    error = InvalidInput(message, code=code, **values)
    error.detail = [{"field": field, "message": error.message, "type": "value_error"}]
    return error


# ----- thresholds -----

@dataclass(frozen=True)
class Threshold:
    """One parsed threshold: ``metric under condition [parameter=value] op number``."""

    text: str
    metric: str
    condition: str
    parameter: str | None
    value: float | None
    op: str
    number: float

    def holds(self, measured: float) -> bool:
        return {">=": measured >= self.number, ">": measured > self.number,
                "<=": measured <= self.number, "<": measured < self.number}[self.op]


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_WORD = r"[^\s<>=]+"
_SHAPE = re.compile(f"^(?P<metric>{_WORD}) under (?P<condition>{_WORD})(?: (?P<parameter>{_WORD})=(?P<value>{_WORD}))?"
                    f" ?(?P<op>>=|<=|>|<) ?(?P<number>{_WORD})$")


def _float(text: str) -> float | None:
    if not re.fullmatch(_NUMBER, text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_threshold(text: object, *, field: str = "thresholds") -> Threshold:
    """The threshold's parts, checked for shape only (:func:`check_threshold` checks them against a template)."""
    if not isinstance(text, str):
        raise _problem(N_("a threshold is a string like 'accuracy under pgd eps=0.1 >= 0.60', not {text!r}"),
                       "invalid_threshold", field, text=text)
    normalized = " ".join(text.split())
    match = _SHAPE.match(normalized)
    if match is None:
        if " under " not in f" {normalized} ":
            why = "it has no 'under <condition>'"
        elif not any(op in normalized for op in OPERATORS):
            why = f"it has no comparison ({', '.join(OPERATORS)})"
        else:
            why = "its parts are not in this order"
        raise _problem(N_("threshold {text!r}: {why}; expected {grammar}"), "invalid_threshold", field,
                          text=text, why=why, grammar=GRAMMAR)
    number = _float(match["number"])
    if number is None:
        raise _problem(N_("threshold {text!r}: {number!r} is not a number"), "invalid_threshold", field,
                          text=text, number=match['number'])
    value = None
    if match["parameter"] is not None:
        value = _float(match["value"])
        if value is None:
            raise _problem(N_("threshold {text!r}: {parameter}={value} is not a number"),
                           "invalid_threshold", field, text=text, parameter=match['parameter'], value=match['value'])
    return Threshold(text=text, metric=match["metric"], condition=match["condition"], parameter=match["parameter"],
                     value=value, op=match["op"], number=number)


def same_value(left: float | None, right: float | None) -> bool:
    if left is None or right is None:
        return left is right
    return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)


def check_threshold(threshold: Threshold, *, kind: str, metric: str, entries: list[ConditionEntry],
                    field: str) -> None:
    """A threshold against its template: the template's metric, one of its conditions (or clean), the
    condition's parameter and a value of its grid. A custom template's notebook names its own conditions."""
    if threshold.metric != metric:
        raise _problem(N_("threshold {text!r}: the metric is {metric!r}, but this template measures "
                          "{measured!r}"), "invalid_threshold", field,
                       text=threshold.text, metric=threshold.metric, measured=metric)
    if threshold.condition == CLEAN:
        if kind == "llm":
            raise _problem(N_("threshold {text!r}: an llm template has no clean data"), "invalid_threshold",
                           field, text=threshold.text)
        if threshold.parameter is not None:
            raise _problem(N_("threshold {text!r}: clean has no parameter"), "invalid_threshold", field,
                              text=threshold.text)
        return
    if kind == "custom":
        if not re.fullmatch(NAME_PATTERN, threshold.condition):
            raise _problem(N_("threshold {text!r}: {condition!r} is not a condition name (lower-case letters, digits "
                              "and '_')"), "invalid_threshold", field,
                              text=threshold.text, condition=threshold.condition)
        return
    entry = next((entry for entry in entries if entry.condition == threshold.condition), None)
    if entry is None:
        named = ", ".join([CLEAN, *(entry.condition for entry in entries)]) if kind != "llm" else \
            ", ".join(entry.condition for entry in entries)
        raise _problem(N_("threshold {text!r}: {condition!r} is not a condition of this template; it has: "
                          "{named}"), "invalid_threshold", field,
                       text=threshold.text, condition=threshold.condition, named=named)
    parameter = registry.REGISTRY[entry.condition].parameter
    if threshold.parameter is None:
        return
    if threshold.parameter != parameter:
        raise _problem(N_("threshold {text!r}: {condition} has no parameter {parameter!r}; its parameter is "
                          "{expected}") if parameter else
                       N_("threshold {text!r}: {condition} has no parameter {parameter!r}; it has no parameter"),
                       "invalid_threshold", field, text=threshold.text, condition=entry.condition,
                       parameter=threshold.parameter, expected=parameter)
    if not any(same_value(threshold.value, value) for value in entry.values):
        grid = ", ".join(format(value, "g") for value in entry.values)
        raise _problem(N_("threshold {text!r}: {parameter}={value:g} is not in the template's {condition} values "
                          "({grid})"), "invalid_threshold", field,
                          text=threshold.text, parameter=parameter, value=threshold.value, condition=entry.condition,
                          grid=grid)


# ----- the template -----

ColumnName = Annotated[str, Field(min_length=1, max_length=255)]


class ConditionEntry(RequestModel):
    condition: str = Field(min_length=1, max_length=64, description="A condition of the registry")
    values: list[int | float] = Field(default_factory=list, max_length=registry.MAX_VALUES,
                                      description="The grid of the condition's parameter")
    options: dict[str, Any] = Field(default_factory=dict, max_length=20,
                                    description="Condition-specific options (the registry's)")


class TemplateInput(RequestModel):
    """How the notebook reads the data; kind-specific, every key optional."""

    image_shape: list[int] | None = Field(None, min_length=2, max_length=3, description="[height, width] or "
                                          "[channels, height, width]; null: square, from the column count")
    pixel_range: list[float] | None = Field(None, min_length=2, max_length=2, description="[low, high]; null: "
                                            "[0, the data's maximum rounded up to 1, 16 or 255]")
    label_column: ColumnName = "label"
    split_column: ColumnName | None = "split"
    test_split: Annotated[str, Field(min_length=1, max_length=100)] = "test"
    max_rows: int = Field(1000, ge=1, le=1_000_000, description="A stratified sample of at most this many rows")
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @field_validator("image_shape")
    @classmethod
    def _positive_sides(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not all(1 <= side <= 4096 for side in value):
            raise ValueError("every side of image_shape is 1..4096")
        return value

    @field_validator("pixel_range")
    @classmethod
    def _ordered(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError("pixel_range is [low, high] with low < high")
        return value


class Regression(RequestModel):
    tolerance: float = Field(0.02, ge=0, le=1, description="The largest drop of the metric (per condition and "
                             "value) against the previous model version's simulation that still passes")


class Limits(RequestModel):
    timeout_seconds: int = Field(900, ge=10, le=86_400)
    memory_mb: int = Field(4096, ge=256, le=262_144)
    cpu_seconds: int = Field(1800, ge=10, le=604_800)
    cpus: int = Field(2, ge=1, le=256)


class Template(RequestModel):
    """A scenario template, resolved (no ``extends`` left to apply) and checked."""

    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(1, ge=1, le=MAX_VERSION)
    title: Title
    description: str = text(2000, default="")
    kind: Literal["image", "tabular", "llm", "custom"]
    metric: str = Field(pattern=NAME_PATTERN)
    notebook: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$",
                          description="notebooks/simulate/<notebook>.ipynb runs it")
    extends: str | None = Field(None, pattern=REFERENCE_PATTERN, description="'<name>@<version>' or '<name>' "
                                "(its latest) of the template this one copies")
    input: TemplateInput = Field(default_factory=TemplateInput)
    conditions: list[ConditionEntry] = Field(min_length=1, max_length=50)
    thresholds: list[str] = Field(default_factory=list, max_length=100)
    regression: Regression = Field(default_factory=Regression)
    limits: Limits = Field(default_factory=Limits)

    @model_validator(mode="after")
    def _against_the_registry(self) -> Template:
        expected = METRICS.get(self.kind)
        if expected is not None and self.metric != expected:
            raise _problem(N_("a {kind} template measures {expected!r}, not {metric!r}"), "invalid_template",
                           "metric", kind=self.kind, expected=expected, metric=self.metric)
        seen: set[str] = set()
        for index, entry in enumerate(self.conditions):
            checked = registry.validate_entry(entry.condition, entry.values, entry.options, kind=self.kind,
                                              where=f"conditions.{index}")
            if checked["condition"] in seen:
                raise _problem(N_("{condition} is listed twice; give all its values in one entry"),
                               "invalid_template", f"conditions.{index}.condition", condition=entry.condition)
            seen.add(checked["condition"])
            entry.values = checked["values"]
            entry.options = {key: value for key, value in checked["options"].items() if value is not None}
        for index, line in enumerate(self.thresholds):
            check_threshold(parse_threshold(line, field=f"thresholds.{index}"), kind=self.kind, metric=self.metric,
                            entries=self.conditions, field=f"thresholds.{index}")
        return self

    def parsed_thresholds(self) -> list[Threshold]:
        return [parse_threshold(line) for line in self.thresholds]

    def entry(self, condition: str) -> ConditionEntry | None:
        return next((entry for entry in self.conditions if entry.condition == condition), None)


# ----- reading, extending, writing -----

class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a small document cannot expand into a huge one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(None, None, "aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def load_document(source: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The template's raw mapping from YAML text (or a mapping, copied); 422 ``invalid_template`` otherwise."""
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="replace")
    if len(source.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        raise _problem(N_("a template is at most {value} KiB of YAML"), "invalid_template",
                       "template", value=MAX_TEMPLATE_BYTES // 1024)
    try:
        document = yaml.load(source, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader without aliases
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise _problem(N_("the template is not valid YAML{where}: {problem}"), "invalid_template", "template",
                          where=where, problem=problem) from None
    if not isinstance(document, dict):
        raise _problem(N_("a template is a YAML mapping (name: ..., kind: ..., conditions: [...])"), "invalid_template",
                       "template")
    return document


def validate(document: Mapping[str, Any]) -> Template:
    """A resolved mapping (its ``extends`` already applied, and kept only as a record) checked as a template:
    what a notebook's ``template`` parameter holds. Pydantic's problems become one 422 naming each field."""
    try:
        return Template.model_validate(dict(document))
    except ValidationError as error:
        detail = [{"field": ".".join(str(part) for part in problem["loc"]) or "template", "message": problem["msg"],
                   "type": problem["type"]} for problem in error.errors()]
        raise InvalidInput("invalid template: {field}: {message_text}", code="invalid_template",
                           detail=detail, field=detail[0]['field'], message_text=detail[0]['message']) from None


def split_reference(reference: str) -> tuple[str, int | None]:
    """``name@version`` or ``name`` (its latest)."""
    if not isinstance(reference, str) or not re.fullmatch(REFERENCE_PATTERN, reference):
        raise _problem(N_("extends {reference!r} is not '<name>' or '<name>@<version>'"), "invalid_template", "extends",
                          reference=reference)
    name, _, version = reference.partition("@")
    return name, int(version) if version else None


def merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """The child's keys over the parent's: lists and scalars whole, the mappings of MERGED_MAPPINGS key by key.
    The name and version are the child's own (version 1 when it gives none)."""
    merged = {key: value for key, value in parent.items() if key not in ("name", "version")}
    for key, value in child.items():
        if key in MERGED_MAPPINGS and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    merged.setdefault("version", 1)
    return merged


def resolve_document(source: str | bytes | Mapping[str, Any], lookup: Lookup | None,
                     _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The raw mapping with its ``extends`` chain applied (unchecked)."""
    document = load_document(source)
    reference = document.get("extends")
    if reference is None:
        return document
    name, version = split_reference(reference)
    if reference in _chain or len(_chain) >= MAX_EXTENDS_DEPTH:
        chain = " -> ".join([*_chain, reference])
        raise _problem(N_("extends goes round in a circle or too deep ({chain})"), "invalid_template", "extends",
                          chain=chain)
    parent = lookup(name, version) if lookup is not None else None
    if parent is None:
        which = f"{name} version {version}" if version else name
        raise _problem(N_("extends {reference!r}: there is no template {which}"), "unknown_template", "extends",
                          reference=reference, which=which)
    return merge(resolve_document(parent, lookup, (*_chain, reference)), document)


def parse_template(source: str | bytes | Mapping[str, Any], lookup: Lookup | None = None) -> Template:
    """A template from YAML text or a mapping, ``extends`` resolved with ``lookup(name, version or None)``
    (the raw parent, or None when there is none), checked against the registry."""
    return validate(resolve_document(source, lookup))


def to_yaml(template: Template) -> str:
    """The template as YAML, its keys in the model's order; :func:`parse_template` reads it back equal (given the
    same lookup where it extends another: every key is its own, but ``extends`` is resolved again)."""
    return yaml.dump(template.model_dump(mode="json"), Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True,
                     width=100)


class _ReadableDumper(yaml.SafeDumper):
    """Multi-line strings (a custom condition's code, a description) as literal blocks, as people write them."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and not any(line != line.rstrip() for line in text.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ReadableDumper.add_representer(str, _string)


# ----- the shipped library -----

def library_dir() -> Path:
    """The shipped template library (notebooks/simulate/templates)."""
    return shipped_notebooks("simulate/templates")


def shipped_documents(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Each shipped template's raw mapping by name (the file's name is the template's)."""
    found = {}
    for path in sorted((folder or library_dir()).glob("*.yaml")):
        document = load_document(path.read_text(encoding="utf-8"))
        if document.get("name") != path.stem:
            raise ValueError(f"{path} names the template {document.get('name')!r}, not {path.stem!r}")
        found[path.stem] = document
    return found


def shipped_lookup(folder: Path | None = None) -> Lookup:
    documents = shipped_documents(folder)

    def lookup(name: str, version: int | None) -> dict[str, Any] | None:
        document = documents.get(name)
        if document is None or (version is not None and document.get("version", 1) != version):
            return None
        return document

    return lookup


def shipped_templates(folder: Path | None = None) -> dict[str, Template]:
    """The shipped library, each template resolved against the others and checked."""
    lookup = shipped_lookup(folder)
    return {name: parse_template(document, lookup) for name, document in shipped_documents(folder).items()}


# ----- the rows a template's input selects -----

def select_rows(frame: Any, spec: TemplateInput) -> Any:
    """The rows of ``frame`` (pandas) a simulation uses: the test split where the split column exists, then a
    sample of at most ``max_rows`` stratified by the label (seeded), in the frame's order."""
    if spec.split_column and spec.split_column in frame.columns:
        frame = frame[frame[spec.split_column].astype(str) == spec.test_split]
    if frame.empty:
        raise ValueError(f"no rows in the {spec.test_split!r} split")
    if len(frame) <= spec.max_rows:
        return frame
    import numpy as np
    from sklearn.model_selection import train_test_split

    labels = frame[spec.label_column] if spec.label_column in frame.columns else None
    counts = labels.value_counts() if labels is not None else None
    stratify = labels if counts is not None and counts.min() >= 2 and len(counts) <= spec.max_rows else None
    kept, _ = train_test_split(np.arange(len(frame)), train_size=spec.max_rows, random_state=spec.seed,
                               stratify=stratify)
    return frame.iloc[np.sort(kept)]
