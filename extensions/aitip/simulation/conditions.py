"""The condition registry: every condition a scenario template may name, its parameter's range and its options,
in one table checked at import. A template's entry is validated here, so an unknown condition, a value out of
range or a gradient attack on a model without gradients is a 422 naming what to fix, never a notebook's crash."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidInput
from ..i18n import N_

Kind = Literal["image", "tabular", "llm", "custom"]
KINDS: tuple[Kind, ...] = ("image", "tabular", "llm", "custom")
OptionType = Literal["int", "float", "choice", "names"]
# The conditions a model without loss gradients can still be attacked with, and the template that runs them.
BLACK_BOX_CONDITIONS = ("square", "hopskipjump")
BLACK_BOX_TEMPLATE = "image_robustness_blackbox"
MAX_VALUES = 50
MAX_NAMES = 500
CUSTOM = "custom"


@dataclass(frozen=True)
class Range:
    """An interval of numbers; each end inclusive or not, ``None`` for unbounded."""

    low: float | None
    high: float | None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def contains(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (value == self.low and not self.low_inclusive)):
            return False
        return not (self.high is not None and (value > self.high or (value == self.high and not self.high_inclusive)))

    def __str__(self) -> str:
        low = "-inf" if self.low is None else format(self.low, "g")
        high = "inf" if self.high is None else format(self.high, "g")
        return f"{'[' if self.low_inclusive else '('}{low}, {high}{']' if self.high_inclusive else ')'}"


@dataclass(frozen=True)
class Option:
    """An option of a condition: a number in a range, one of some choices, or a list of names."""

    name: str
    type: OptionType
    default: Any = None
    range: Range | None = None
    choices: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Condition:
    """A row of the registry. ``parameter`` is None for conditions without a grid (the LLM suites)."""

    name: str
    kind: Kind
    parameter: str | None
    range: Range | None
    integer: bool = False
    options: tuple[Option, ...] = ()
    needs_gradients: bool = False
    description: str = ""
    unit: str = ""
    free_options: bool = field(default=False)  # custom: the notebook reads whatever it is given

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)


_OPEN_UNIT = Range(0, 1, low_inclusive=False)
_EPS_UNIT = "fraction of the pixel range"
_STD_UNIT = "standard deviations of each feature"
_LLM_OPTIONS = (
    Option("probes", "names", description="A subset of the suite's probe ids (default: all of them)"),
    Option("detectors", "names", description="The detectors that decide a hit (default: the suite's)"),
)

CONDITIONS: tuple[Condition, ...] = (
    Condition("gaussian_noise", "image", "sigma", _OPEN_UNIT, unit=_EPS_UNIT,
              description=N_("Gaussian noise added to every pixel")),
    Condition("blur", "image", "sigma", Range(0, 5, low_inclusive=False), unit="pixels",
              description=N_("Gaussian blur of the image")),
    Condition("brightness", "image", "delta", Range(-1, 1), unit=_EPS_UNIT,
              description=N_("Every pixel made brighter or darker by the same amount")),
    Condition("contrast", "image", "factor", Range(0, 3, low_inclusive=False), unit="times",
              description=N_("Each image's distance from its mean brightness scaled")),
    Condition("jpeg", "image", "quality", Range(1, 100), integer=True, unit="JPEG quality",
              description=N_("The image saved as a JPEG of this quality and read back")),
    Condition("occlusion", "image", "size", Range(1, 64), integer=True, unit="pixels",
              description=N_("A square patch of the darkest value at the worst position")),
    Condition("fgsm", "image", "eps", _OPEN_UNIT, unit=_EPS_UNIT, needs_gradients=True,
              description=N_("Fast gradient sign attack (ART FastGradientMethod)")),
    Condition("pgd", "image", "eps", _OPEN_UNIT, unit=_EPS_UNIT, needs_gradients=True, options=(
        Option("max_iter", "int", 10, Range(1, 200), description="Gradient steps"),
        Option("eps_step", "float", None, _OPEN_UNIT, description="Step size (default: eps / 4)"),
    ), description=N_("Projected gradient descent attack (ART ProjectedGradientDescent)")),
    Condition("square", "image", "eps", _OPEN_UNIT, unit=_EPS_UNIT, options=(
        Option("max_iter", "int", 100, Range(1, 10_000), description="Queries per image"),
    ), description=N_("Square attack from predictions only (ART SquareAttack)")),
    Condition("hopskipjump", "image", "eps", _OPEN_UNIT, unit=_EPS_UNIT, options=(
        Option("max_iter", "int", 10, Range(1, 1000), description="Iterations of the attack"),
        Option("max_eval", "int", 200, Range(1, 100_000), description="Queries per gradient estimate"),
    ), description=N_("HopSkipJump decision attack from predicted labels only (ART HopSkipJump)")),
    Condition("feature_noise", "tabular", "sigma", Range(0, 3, low_inclusive=False), unit=_STD_UNIT,
              description=N_("Gaussian noise added to every numeric feature")),
    Condition("missing_values", "tabular", "fraction", _OPEN_UNIT, unit="fraction of the cells", options=(
        Option("fill", "choice", "mean", choices=("mean", "zero", "nan"),
               description="What a missing cell becomes before the model sees it"),
    ), description=N_("A fraction of the cells removed and filled")),
    Condition("category_swap", "tabular", "fraction", _OPEN_UNIT, unit="fraction of the cells",
              description=N_("A fraction of each categorical feature's cells given another category")),
    Condition("feature_shift", "tabular", "magnitude", Range(0, 3, low_inclusive=False), unit=_STD_UNIT,
              description=N_("Every numeric feature shifted by the same number of standard deviations")),
    Condition("drift", "tabular", "reference_version", Range(1, 999_999_999), integer=True,
              unit="dataset version", description=N_("The model on another version of the dataset, with "
                                                     "per-feature drift (PSI and KS)")),
    Condition("prompt_injection", "llm", None, None, options=_LLM_OPTIONS,
              description=N_("Prompt-injection probes against the endpoint")),
    Condition("jailbreak", "llm", None, None, options=_LLM_OPTIONS,
              description=N_("Jailbreak probes against the endpoint")),
    Condition("data_exfiltration", "llm", None, None, options=_LLM_OPTIONS,
              description=N_("Probes that try to make the endpoint reveal what it must keep")),
    Condition(CUSTOM, "custom", None, None, free_options=True,
              description=N_("A notebook of your own returns its table of conditions and metrics")),
)

REGISTRY: dict[str, Condition] = {condition.name: condition for condition in CONDITIONS}


def _check_registry(conditions: Sequence[Condition]) -> None:
    """The table's own consistency, checked at import so a bad row fails every test at once."""
    names = [condition.name for condition in conditions]
    if len(names) != len(set(names)) or "clean" in names:
        raise AssertionError("condition names must be unique and never 'clean' (the unperturbed data)")
    for condition in conditions:
        if condition.kind not in KINDS:
            raise AssertionError(f"{condition.name}: unknown kind {condition.kind}")
        if (condition.parameter is None) != (condition.range is None):
            raise AssertionError(f"{condition.name}: a parameter needs a range and a range a parameter")
        if not condition.description:
            raise AssertionError(f"{condition.name}: no description")
        for option in condition.options:
            if option.type in ("int", "float") and option.default is not None and option.range is not None \
                    and not option.range.contains(option.default):
                raise AssertionError(f"{condition.name}.{option.name}: default outside its range")
            if option.type == "choice" and option.default not in option.choices:
                raise AssertionError(f"{condition.name}.{option.name}: default not one of its choices")


_check_registry(CONDITIONS)


def names_of_kind(kind: str) -> list[str]:
    return [condition.name for condition in CONDITIONS if condition.kind == kind]


def _problem(message: str, code: str, where: str, **values: Any) -> InvalidInput:
    error = InvalidInput(message, code=code, **values)
    error.detail = [{"field": where, "message": error.message, "type": "value_error"}]
    return error


def lookup(name: object, kind: str | None = None, *, where: str = "condition") -> Condition:
    """The registry's row for ``name``; 422 naming it and the known conditions (of ``kind``) otherwise."""
    condition = REGISTRY.get(name) if isinstance(name, str) else None
    if condition is None or (kind is not None and condition.kind != kind):
        known = names_of_kind(kind) if kind else sorted(REGISTRY)
        of_kind = f" for a {kind} template" if kind else ""
        shown = name if isinstance(name, str) else repr(name)
        raise _problem(N_("unknown condition {shown!r}{of_kind}; known: {known}"),
                       "unknown_condition", where, shown=shown, of_kind=of_kind, known=', '.join(known))
    return condition


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(condition: Condition, value: object, where: str) -> int | float:
    assert condition.parameter is not None and condition.range is not None
    label = f"{condition.name} {condition.parameter}"
    if not _number(value) or not math.isfinite(value):  # type: ignore[arg-type]
        raise _problem(N_("{label} must be a number in {range}, not {value!r}"), "value_out_of_range", where,
                          label=label, range=condition.range, value=value)
    if condition.integer:
        if isinstance(value, float) and not value.is_integer():
            raise _problem(N_("{label} must be a whole number in {range}, not {value!r}"),
                           "value_out_of_range", where, label=label, range=condition.range, value=value)
        value = int(value)  # type: ignore[arg-type]
    if not condition.range.contains(value):  # type: ignore[arg-type]
        unit = f" ({condition.unit})" if condition.unit else ""
        raise _problem(N_("{label} = {value:g} is out of range: it must be in {range}{unit}"),
                       "value_out_of_range", where, label=label, value=value, range=condition.range, unit=unit)
    return value  # type: ignore[return-value]


def _check_option(condition: Condition, name: str, value: object, where: str) -> Any:
    option = condition.option(name)
    if option is None:
        known = ", ".join(option.name for option in condition.options) or "none"
        raise _problem(N_("{name} has no option {name2!r}; its options: {known}"), "unknown_option", where,
                          name=condition.name, name2=name, known=known)
    label = f"{condition.name} option {name}"
    if option.type == "choice":
        if value not in option.choices:
            raise _problem(N_("{label} must be one of {choices}, not {value!r}"),
                           "option_out_of_range", where, label=label, choices=', '.join(option.choices), value=value)
        return value
    if option.type == "names":
        if not isinstance(value, list) or len(value) > MAX_NAMES or not all(
                isinstance(item, str) and 0 < len(item) <= 200 for item in value):
            raise _problem(N_("{label} must be a list of at most {max_names} names (strings of 1-200 characters)"),
                           "option_out_of_range", where, label=label, max_names=MAX_NAMES)
        return list(value)
    whole = option.type == "int"
    if not _number(value) or not math.isfinite(value) or (  # type: ignore[arg-type]
            whole and isinstance(value, float) and not value.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise _problem(N_("{label} must be {kind} in {range}, not {value!r}"), "option_out_of_range", where,
                          label=label, kind=kind, range=option.range, value=value)
    value = int(value) if whole else float(value)  # type: ignore[arg-type]
    if option.range is not None and not option.range.contains(value):
        raise _problem(N_("{label} = {value:g} is out of range: it must be in {range}"),
                       "option_out_of_range", where, label=label, value=value, range=option.range)
    return value


def validate_entry(name: object, values: Iterable[object] | None = None, options: Mapping[str, Any] | None = None,
                   *, kind: str | None = None, where: str = "conditions") -> dict[str, Any]:
    """One condition of a template, checked against the registry: ``{"condition", "values", "options"}`` with
    integer parameters as ints and every option given (defaults filled in). Raises InvalidInput (422)."""
    condition = lookup(name, kind, where=f"{where}.condition")
    values = list(values or [])
    if condition.parameter is None:
        if values and condition.name != CUSTOM:
            raise _problem(N_("{name} takes no values (it has no parameter); omit them"),
                           "value_out_of_range", f"{where}.values", name=condition.name)
        checked = [_check_value(Condition(CUSTOM, "custom", "value", Range(None, None)), value, f"{where}.values")
                   for value in values]
    else:
        if not values:
            raise _problem(N_("{name} needs at least one {parameter} value in {range}"),
                           "value_out_of_range", f"{where}.values",
                              name=condition.name, parameter=condition.parameter, range=condition.range)
        checked = [_check_value(condition, value, f"{where}.values.{index}") for index, value in enumerate(values)]
    if len(checked) > MAX_VALUES:
        raise _problem(N_("{name} has {checked_count} values; at most {max_values}"), "value_out_of_range",
                       f"{where}.values", name=condition.name, checked_count=len(checked), max_values=MAX_VALUES)
    if len(set(checked)) != len(checked):
        raise _problem(N_("{name} lists a value twice"), "value_out_of_range", f"{where}.values",
                          name=condition.name)
    given = dict(options or {})
    if condition.free_options:
        return {"condition": condition.name, "values": checked, "options": given}
    resolved = {option.name: option.default for option in condition.options}
    for option_name, value in given.items():
        resolved[option_name] = _check_option(condition, option_name, value, f"{where}.options.{option_name}")
    return {"condition": condition.name, "values": checked, "options": resolved}


def gradient_conditions(names: Iterable[str]) -> list[str]:
    return [name for name in names if name in REGISTRY and REGISTRY[name].needs_gradients]


def gradients_required(needing: Sequence[str], reason: str, *, where: str = "conditions") -> InvalidInput:
    """The 422 for gradient attacks (``needing``) on a model without loss gradients (``reason`` says why)."""
    return _problem(N_("{needing} need the model's loss gradients, and this model has none: {reason}. Use the "
                       "black-box conditions ({black_box}) or the {template} template instead"), "gradients_required",
                    where, needing=", ".join(needing), reason=reason, black_box=", ".join(BLACK_BOX_CONDITIONS),
                    template=BLACK_BOX_TEMPLATE)


def refuse_gradient_attacks(names: Iterable[str], reason: str, *, where: str = "conditions") -> None:
    """Raises :func:`gradients_required` when any of ``names`` needs loss gradients the model lacks."""
    needing = gradient_conditions(names)
    if needing:
        raise gradients_required(needing, reason, where=where)
