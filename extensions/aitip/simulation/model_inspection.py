"""Whether a staged MLflow model has loss gradients ART can use, decided without running anything of it.

The platform decides this before a gradient attack is queued, so a template asking FGSM of an MLP is a 422
at once rather than an error minutes later. Nothing is unpickled and no module the model names is imported:
``MLmodel`` is read as YAML; a scikit-learn model's classes are read from its file — a skops file's
``schema.json`` (every object's ``__class__`` and ``__module__``), or a pickle's GLOBAL/STACK_GLOBAL opcodes
walked with :func:`pickletools.genops` (which parses, never executes)."""

from __future__ import annotations

import json
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

GRADIENT_FLAVORS = ("pytorch", "keras", "tensorflow")
# ART's scikit-learn classifiers with loss gradients, and the steps it can differentiate through before them
# (an affine map it takes as its ``preprocessing``).
GRADIENT_ESTIMATORS = frozenset({"LogisticRegression", "SVC", "LinearSVC"})
LINEAR_PREPROCESSING = frozenset({"StandardScaler", "MinMaxScaler"})
CONTAINERS = frozenset({"Pipeline"})
# How scikit-learn's predictors are named, to say which part of a model lacks gradients (a classifier's own
# helpers, an MLP's optimizer say, are read too).
PREDICTOR_SUFFIXES = ("Classifier", "Regressor", "Regression", "SVC", "SVR", "NB", "Forest", "Boost", "Tree",
                      "Neighbors", "Analysis", "Ensemble")
# Modules whose classes only carry data (arrays, dtypes, containers), never a model's behaviour.
DATA_MODULES = ("builtins", "copyreg", "_codecs", "collections", "numpy", "__builtin__")
MAX_SCHEMA_BYTES = 64 * 1024 * 1024
MAX_PICKLE_BYTES = 2 * 1024 * 1024 * 1024
_STRING_OPS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
                         "BINUNICODE8"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MARK = object()


@dataclass(frozen=True)
class GradientSupport:
    """What was found: whether ART can take loss gradients, the flavor, the classes read, and why."""

    has_gradients: bool
    flavor: str
    reason: str
    classes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"has_gradients": self.has_gradients, "flavor": self.flavor, "reason": self.reason,
                "classes": list(self.classes)}


def _data_module(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in DATA_MODULES)


def pickle_globals(data: bytes) -> tuple[list[tuple[str, str]], set[str]]:
    """The (module, name) of every global a pickle refers to, in order of first use, and its string constants;
    read with :func:`pickletools.genops`, the pickle's stack simulated for STACK_GLOBAL's two strings."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    found: list[tuple[str, str]] = []
    strings: set[str] = set()

    def pop_to_mark() -> None:
        while stack and stack.pop() is not _MARK:
            pass

    for opcode, argument, _position in pickletools.genops(data):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            module, _, qualified = str(argument).partition(" ")
            found.append((module, qualified))
            if name == "INST":
                pop_to_mark()
            stack.append(None)
            continue
        if name == "STACK_GLOBAL":
            qualified = stack.pop() if stack else None
            module = stack.pop() if stack else None
            found.append((module if isinstance(module, str) else "?", qualified if isinstance(qualified, str) else "?"))
            stack.append(None)
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
            continue
        if name in _PUT_OPS:
            memo[int(argument)] = stack[-1] if stack else None
            continue
        if name in _GET_OPS:
            stack.append(memo.get(int(argument)))
            continue
        before = opcode.stack_before
        if pickletools.markobject in before:
            pop_to_mark()
            del stack[len(stack) - before.index(pickletools.markobject):]
        elif before:
            del stack[max(0, len(stack) - len(before)):]
        for produced in opcode.stack_after:
            if produced is pickletools.markobject:
                stack.append(_MARK)
            elif name in _STRING_OPS:
                value = argument.decode("latin-1") if isinstance(argument, bytes) else argument
                strings.add(value)
                stack.append(value)
            else:
                stack.append(None)
    unique = list(dict.fromkeys(found))
    return unique, strings


def skops_classes(path: Path) -> tuple[list[tuple[str, str]], set[str]]:
    """The (module, class) of every object a skops file holds, in document order, and its JSON string values
    (read from its ``schema.json``; the arrays beside it are never opened)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("schema.json")
        if info.file_size > MAX_SCHEMA_BYTES:
            raise ValueError(f"{path.name}: schema.json is {info.file_size} bytes, more than is read")
        schema = json.loads(archive.read(info))
    found: list[tuple[str, str]] = []
    strings: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__class__"), str) and isinstance(node.get("__module__"), str):
                found.append((node["__module__"], node["__class__"]))
            if node.get("is_json") and isinstance(node.get("content"), str):
                try:
                    value = json.loads(node["content"])
                except ValueError:
                    value = None
                if isinstance(value, str):
                    strings.add(value)
            pending.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            pending.extend(reversed(node))
    return list(dict.fromkeys(found)), strings


def judge_classes(found: list[tuple[str, str]], strings: set[str]) -> tuple[bool, str, list[str]]:
    """Gradients when the model is LogisticRegression, SVC or LinearSVC, alone or last in a Pipeline after
    StandardScaler/MinMaxScaler steps only; else why not."""
    components = [(module, name) for module, name in found if not _data_module(module)]
    names = [name for _, name in components]
    foreign = [f"{module}.{name}" for module, name in components if not module.startswith("sklearn.")]
    if foreign:
        return False, (f"the model holds {foreign[0]}, which is not scikit-learn: ART cannot take loss gradients "
                       "through code it does not know"), names
    predictors = [name for name in names if name in GRADIENT_ESTIMATORS]
    others = [name for name in names if name not in GRADIENT_ESTIMATORS | LINEAR_PREPROCESSING | CONTAINERS]
    if others:
        if not predictors or names.index(others[-1]) > names.index(predictors[-1]):
            predictor = next((name for name in others if name.endswith(PREDICTOR_SUFFIXES)), others[0])
            return False, f"{predictor} has no loss gradients in ART", names
        return False, (f"{others[0]} comes before {predictors[-1]}: ART differentiates only through "
                       "StandardScaler and MinMaxScaler steps"), names
    if len(predictors) != 1:
        what = "no" if not predictors else "more than one"
        return False, f"the model holds {what} LogisticRegression, SVC or LinearSVC", names
    if predictors[0] == "SVC" and "precomputed" in strings:
        return False, "an SVC with a precomputed kernel has no loss gradients in ART", names
    if names[-1] != predictors[0] and any(name in LINEAR_PREPROCESSING for name in names[names.index(predictors[0]):]):
        return False, f"a scaling step comes after {predictors[0]}", names
    steps = [name for name in names if name in LINEAR_PREPROCESSING]
    through = f" after {', '.join(steps)}" if steps else ""
    return True, f"{predictors[0]}{through}: ART has loss gradients for it", names


def _sklearn(folder: Path, flavor: dict[str, Any]) -> GradientSupport:
    file_name = flavor.get("pickled_model")
    if not isinstance(file_name, str) or not file_name:
        return GradientSupport(False, "sklearn", "its MLmodel names no model file")
    path = (folder / file_name).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        return GradientSupport(False, "sklearn", f"its model file {file_name!r} is not in the model's folder")
    serialization = flavor.get("serialization_format") or ("skops" if path.suffix == ".skops" else "cloudpickle")
    try:
        if serialization == "skops":
            found, strings = skops_classes(path)
        else:
            if path.stat().st_size > MAX_PICKLE_BYTES:
                return GradientSupport(False, "sklearn", "its pickle is too large to read")
            found, strings = pickle_globals(path.read_bytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        return GradientSupport(False, "sklearn", f"its {serialization} file could not be read ({error})")
    has, reason, names = judge_classes(found, strings)
    return GradientSupport(has, "sklearn", reason, names)


def gradient_support(model_dir: str | Path) -> GradientSupport:
    """Whether the MLflow model in ``model_dir`` has loss gradients for ART, read from its files only."""
    folder = Path(model_dir)
    try:
        described = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        return GradientSupport(False, "unknown", f"its MLmodel could not be read ({error})")
    flavors = described.get("flavors") if isinstance(described, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        return GradientSupport(False, "unknown", "its MLmodel names no flavors")
    for name in GRADIENT_FLAVORS:
        if name in flavors:
            return GradientSupport(True, name, f"a {name} model: ART takes its loss gradients")
    if isinstance(flavors.get("sklearn"), dict):
        return _sklearn(folder, flavors["sklearn"])
    named = ", ".join(sorted(flavors))
    return GradientSupport(False, next(iter(flavors)), f"a model of flavor {named}: only its predictions are known")
