"""Evaluations and their policies: the evaluation section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from ..schema import ReportQuery
from .models import (
    Evaluation,
    EvaluationCreate,
    EvaluationDetail,
    EvaluationList,
    EvaluationListQuery,
    Policy,
    PolicyList,
    PolicySet,
)

_EVALUATIONS = "projects/{project}/evaluations"
_POLICIES = "projects/{project}/evaluation-policies"
_EVALUATION = {"evaluation": "evaluation_id"}

SECTION = Section("evaluation", "Evaluation", (
    Operation("evaluations.list", "evaluation.read", "GET", _EVALUATIONS,
              "The project's evaluations, newest first: model and dataset versions, metrics, verdict",
              query=EvaluationListQuery, response=EvaluationList, call="evaluations.list"),
    Operation("evaluations.create", "evaluation.run", "POST", _EVALUATIONS,
              "Evaluate a model version now (its policy, with what the request gives instead): answers at once "
              "with the evaluation, judged when its job ends", body=EvaluationCreate, response=Evaluation,
              status=202, call="evaluations.create", location="id", long_running=True),
    Operation("evaluations.get", "evaluation.read", "GET", f"{_EVALUATIONS}/{{evaluation}}",
              "One evaluation with its tables, plots, profile and verdict", response=EvaluationDetail,
              call="evaluations.get", arguments=_EVALUATION),
    Operation("evaluations.report", "evaluation.read", "GET", f"{_EVALUATIONS}/{{evaluation}}/report",
              "The evaluation's report, HTML or PDF", query=ReportQuery,
              handler="aitip.server.handlers.reports:EvaluationReportHandler", not_in=frozenset({"mcp"}),
              gives_file=True),
    Operation("evaluation_policies.list", "evaluation.read", "GET", _POLICIES,
              "How the project's models are evaluated", response=PolicyList, call="evaluations.list_policies"),
    Operation("evaluation_policies.get", "evaluation.read", "GET", f"{_POLICIES}/{{model}}",
              "How a model is evaluated", response=Policy, call="evaluations.get_policy"),
    Operation("evaluation_policies.set", "evaluation.manage", "PUT", f"{_POLICIES}/{{model}}",
              "Say how a model is evaluated (notebook, dataset, thresholds, baseline); automatic: each version "
              "a training job registers is evaluated at once", body=PolicySet, response=Policy,
              call="evaluations.set_policy"),
    Operation("evaluation_policies.delete", "evaluation.manage", "DELETE", f"{_POLICIES}/{{model}}",
              "Stop evaluating a model by policy (its evaluations stay)", status=204,
              call="evaluations.delete_policy"),
))
