"""Path parameters: the router's pattern for each, the rule a value is held to, and the value a service gets.

The router's patterns take what may be a value; ``convert`` refuses what can never name anything, the way
the API always has: an impossible project name is a 404 (no such project), a dataset name that breaks the
name rule a 422 saying why, a version below 1 a 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput, NotFound, Phrase
from ..i18n import N_
from ..schema import DATASET_NAME_REGEX, PROJECT_NAME_PATTERN, dataset_name_error

ID_PATTERN = r"[0-9]{1,18}"


@dataclass(frozen=True)
class PathParameter:
    pattern: str
    convert: Callable[[str], Any]
    json_type: str  # the JSON type a tool or SDK caller gives: "string" or "integer"
    description: str


def _project(value: str) -> str:
    if not re.fullmatch(PROJECT_NAME_PATTERN, value):
        raise NotFound("project {value!r} does not exist (project names are DNS labels)", value=value)
    return value


def _dataset(value: str) -> str:
    problem = dataset_name_error(value)
    if problem is not None:
        raise InvalidInput("invalid path: dataset: {problem}",
                           detail=[{"field": "dataset", "message": str(problem), "type": "dataset_name"}],
                           problem=problem)
    return value


def _counted_from_one(what: str) -> Callable[[str], int]:
    """A path value counted from 1; ``what`` (marked with ``N_()``) names what is counted in the 404."""
    def convert(value: str) -> int:
        number = int(value)
        if number < 1:
            raise NotFound("{what} start at 1", what=Phrase(what))
        return number

    return convert


_version = _counted_from_one(N_("dataset versions"))


def _member_kind(value: str) -> str:
    return value.removesuffix("s")  # "users" -> "user": the service's enum takes it (see binding)


def _alias(value: str) -> str:
    """MLflow's alias rule: letters, digits, ``_`` and ``-``; ``latest`` and ``v<N>`` name versions already."""
    if value.lower() == "latest" or re.fullmatch(r"[vV](ersion)?[0-9]+", value):
        raise InvalidInput("invalid path: alias: {value!r} is reserved (it already names a version)",
                           detail=[{"field": "alias", "message": "reserved alias", "type": "alias_reserved"}],
                           value=value)
    return value


def _endpoint(value: str) -> str:
    if not re.fullmatch(PROJECT_NAME_PATTERN, value):
        raise NotFound("endpoint {value!r} does not exist (endpoint names are DNS labels)", value=value)
    return value


def _identifier(value: str) -> int:
    return int(value)


PATH_PARAMETERS: dict[str, PathParameter] = {
    "project": PathParameter(r"[^/]+", _project, "string", "The project's name (a DNS label)"),
    "kind": PathParameter(r"users|groups", _member_kind, "string", "'users' or 'groups'"),
    "member": PathParameter(r"[^/]+", str, "string", "The user's or group's hub name"),
    "job": PathParameter(ID_PATTERN, _identifier, "integer", "The job's id"),
    "sweep": PathParameter(ID_PATTERN, _identifier, "integer", "The sweep's id"),
    "run": PathParameter(r"[0-9a-f]{32}", str, "string", "The MLflow run id (32 hex digits)"),
    "dataset": PathParameter(DATASET_NAME_REGEX, _dataset, "string", "The dataset's name"),
    "version": PathParameter(r"[0-9]{1,9}", _version, "integer", "The dataset version (from 1)"),
    "task": PathParameter(ID_PATTERN, _identifier, "integer", "The annotation task's id"),
    "item": PathParameter(ID_PATTERN, _identifier, "integer", "The item's id"),
    "assignment": PathParameter(ID_PATTERN, _identifier, "integer", "The assignment's id"),
    "subscription": PathParameter(ID_PATTERN, _identifier, "integer", "The webhook subscription's id"),
    "registration": PathParameter(ID_PATTERN, _identifier, "integer", "The dataset registration's id"),
    "evaluation": PathParameter(ID_PATTERN, _identifier, "integer", "The evaluation's id"),
    "simulation": PathParameter(ID_PATTERN, _identifier, "integer", "The simulation's id"),
    "template": PathParameter(r"[a-z][a-z0-9_]{0,63}", str, "string", "The scenario template's name"),
    "endpoint": PathParameter(r"[^/]+", _endpoint, "string", "The endpoint's name (a DNS label)"),
    "model_version": PathParameter(r"[0-9]{1,9}", _counted_from_one(N_("model versions")), "integer",
                                   "The model version (from 1)"),
    "key": PathParameter(ID_PATTERN, _identifier, "integer", "The API key's id"),
    "optimization": PathParameter(ID_PATTERN, _identifier, "integer", "The optimization's id (its job's)"),
    "release": PathParameter(ID_PATTERN, _identifier, "integer", "The release's id"),
    "rollout": PathParameter(ID_PATTERN, _identifier, "integer", "The rollout's id"),
    "device": PathParameter(ID_PATTERN, _identifier, "integer", "The device's id"),
    "device_rollout": PathParameter(ID_PATTERN, _identifier, "integer", "The device rollout's id"),
    "model": PathParameter(r"[^/]{1,256}", str, "string", "The registered model's name"),
    "alias": PathParameter(r"[A-Za-z0-9_-]{1,255}", _alias, "string",
                           "The alias: letters, digits, '_' and '-' (not 'latest' nor v<N>)"),
}
