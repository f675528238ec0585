"""Simulations, their templates and policies: the simulation section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from ..schema import ReportQuery
from .models import (
    CompareQuery,
    Comparison,
    Policy,
    PolicyList,
    PolicySet,
    Simulation,
    SimulationCreate,
    SimulationDetail,
    SimulationList,
    SimulationListQuery,
    Template,
    TemplateList,
    TemplateQuery,
    TemplateSave,
)

_SIMULATIONS = "projects/{project}/simulations"
_TEMPLATES = "projects/{project}/simulation-templates"
_POLICIES = "projects/{project}/simulation-policies"
_SIMULATION = {"simulation": "simulation_id"}

SECTION = Section("simulation", "Simulation", (
    Operation("simulation_templates.list", "simulation.read", "GET", _TEMPLATES,
              "Scenario templates: the shipped library and the project's own, each at its latest version",
              response=TemplateList, call="simulations.list_templates"),
    Operation("simulation_templates.get", "simulation.read", "GET", f"{_TEMPLATES}/{{template}}",
              "One scenario template (a version of it), resolved, with its YAML", query=TemplateQuery,
              response=Template, call="simulations.get_template", arguments={"template": "name"}),
    Operation("simulation_templates.save", "simulation.run", "PUT", f"{_TEMPLATES}/{{template}}",
              "Save a new version of a project template: written whole, or a copy of another (extends) with "
              "what differs", body=TemplateSave, response=Template, call="simulations.save_template",
              arguments={"template": "name"}),
    Operation("simulations.list", "simulation.read", "GET", _SIMULATIONS,
              "The project's simulations, newest first: template, model or endpoint, verdict",
              query=SimulationListQuery, response=SimulationList, call="simulations.list"),
    Operation("simulations.create", "simulation.run", "POST", _SIMULATIONS,
              "Simulate now: a template against a model version and a dataset version (or an endpoint), in a "
              "sandboxed job; answers at once, judged when the job ends", body=SimulationCreate,
              response=Simulation, status=202, call="simulations.create", location="id", long_running=True),
    Operation("simulations.get", "simulation.read", "GET", f"{_SIMULATIONS}/{{simulation}}",
              "One simulation with its per-condition metrics, examples, probes and verdict",
              response=SimulationDetail, call="simulations.get", arguments=_SIMULATION),
    Operation("simulations.compare", "simulation.read", "GET", f"{_SIMULATIONS}/{{simulation}}/compare",
              "A simulation beside another of the same template (default: the previous version's): the "
              "metric's change per condition", query=CompareQuery, response=Comparison,
              call="simulations.compare", arguments=_SIMULATION),
    Operation("simulations.report", "simulation.read", "GET", f"{_SIMULATIONS}/{{simulation}}/report",
              "The simulation's security assessment, HTML or PDF", query=ReportQuery,
              handler="aitip.server.handlers.reports:SimulationReportHandler", not_in=frozenset({"mcp"}),
              gives_file=True),
    Operation("simulation_policies.list", "simulation.read", "GET", _POLICIES,
              "How the project's models are simulated", response=PolicyList, call="simulations.list_policies"),
    Operation("simulation_policies.get", "simulation.read", "GET", f"{_POLICIES}/{{model}}",
              "How a model is simulated", response=Policy, call="simulations.get_policy"),
    Operation("simulation_policies.set", "simulation.manage", "PUT", f"{_POLICIES}/{{model}}",
              "Say how a model is simulated (template, dataset or endpoint); automatic: each version whose "
              "evaluation passes is simulated at once", body=PolicySet, response=Policy,
              call="simulations.set_policy"),
    Operation("simulation_policies.delete", "simulation.manage", "DELETE", f"{_POLICIES}/{{model}}",
              "Stop simulating a model by policy (its simulations stay)", status=204,
              call="simulations.delete_policy"),
))
