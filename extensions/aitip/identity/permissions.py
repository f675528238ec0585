"""The one permission table: every action the platform offers and the least role that may do it.

Faces declare which action each route performs; services check it here. A test walks every
registered route and fails if any method has no action in this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .roles import Role


class PermissionScope(str, Enum):
    public = "public"  # anyone, without credentials
    authenticated = "authenticated"  # any signed-in hub user
    project = "project"  # a member of the project holding at least ``min_role``


@dataclass(frozen=True)
class Permission:
    action: str
    scope: PermissionScope
    min_role: Role | None
    description: str


def _table(*entries: Permission) -> dict[str, Permission]:
    table: dict[str, Permission] = {}
    for entry in entries:
        if entry.action in table:
            raise ValueError(f"permission {entry.action!r} declared twice")
        if (entry.scope is PermissionScope.project) != (entry.min_role is not None):
            raise ValueError(f"permission {entry.action!r}: project actions, and only they, name a min_role")
        table[entry.action] = entry
    return table


_P = PermissionScope
PERMISSIONS: dict[str, Permission] = _table(
    Permission("platform.health", _P.public, None, "Liveness of the platform service"),
    Permission("platform.me", _P.authenticated, None, "The caller's identity, groups and project roles"),
    Permission("platform.openapi", _P.authenticated, None, "The OpenAPI description of the REST API"),
    Permission("platform.mcp", _P.authenticated, None,
               "The MCP endpoint for agents: each tool is an operation, checked as its own action"),
    Permission("workspace.forward", _P.authenticated, None,
               "A user server relays its owner's call to the platform, which checks the real action"),
    Permission("project.create", _P.authenticated, None, "Create a project (the creator becomes its admin)"),
    Permission("project.list", _P.authenticated, None, "List the projects the caller belongs to"),
    Permission("project.read", _P.project, Role.viewer, "Read a project"),
    Permission("project.update", _P.project, Role.maintainer, "Change a project's title or description"),
    Permission("project.archive", _P.project, Role.admin, "Archive or unarchive a project"),
    Permission("member.list", _P.project, Role.viewer, "List a project's members"),
    Permission("member.add", _P.project, Role.maintainer, "Add a user or group to a project"),
    Permission("member.update", _P.project, Role.maintainer, "Change a member's role"),
    Permission("member.remove", _P.project, Role.maintainer, "Remove a member from a project"),
    Permission("job.list", _P.authenticated, None, "List jobs in the projects the caller belongs to"),
    Permission("notebook.list", _P.authenticated, None,
               "Read the notebooks the platform ships for jobs, with their parameters"),
    Permission("job.submit", _P.project, Role.developer, "Run a notebook as a job in the project"),
    Permission("job.read", _P.project, Role.viewer, "Read a job, its events and its executed notebook"),
    Permission("job.cancel", _P.project, Role.developer,
               "Cancel a job: its owner, or a maintainer for anyone's"),
    Permission("job.retry", _P.project, Role.developer,
               "Re-run a job's exact snapshot as a new job: its owner, or a maintainer"),
    Permission("job.rerun", _P.project, Role.developer,
               "Run a job's notebook again as one's own new job, with parameters, inputs or settings changed"),
    Permission("job.record_input", _P.project, Role.viewer,
               "Record a dataset version a running job read (only the job's own credential may)"),
    Permission("job.track", _P.project, Role.viewer,
               "Store now what a running job's kernel spooled for MLflow (only the job's own credential may)"),
    Permission("tracking.gateway", _P.project, Role.developer,
               "MLflow's REST API for a running job's kernel: its project's runs, models and artifacts only"),
    Permission("sweep.create", _P.project, Role.developer, "Start a parameter sweep (its trials are jobs)"),
    Permission("sweep.read", _P.project, Role.viewer, "Read sweeps and their trials"),
    Permission("sweep.cancel", _P.project, Role.developer, "Cancel a sweep: its owner, or a maintainer"),
    Permission("experiment.read", _P.project, Role.viewer,
               "Read the project's MLflow experiments, runs, metric curves and run comparisons"),
    Permission("model.read", _P.project, Role.viewer,
               "Read the registered models whose versions came from the project's runs"),
    Permission("model.manage", _P.project, Role.maintainer,
               "Point a registered model's alias (champion, staging...) at one of the project's versions, or "
               "remove it"),
    Permission("evaluation.read", _P.project, Role.viewer,
               "Read the project's evaluations (metrics, verdicts, reports) and evaluation policies"),
    Permission("evaluation.run", _P.project, Role.developer,
               "Evaluate a model version of the project now (an evaluation is a job)"),
    Permission("evaluation.manage", _P.project, Role.maintainer,
               "Set or remove how a model is evaluated: notebook, data, thresholds, baseline, automatic runs"),
    Permission("simulation.read", _P.project, Role.viewer,
               "Read the project's simulations (metrics, examples, verdicts, security assessments), scenario "
               "templates and simulation policies"),
    Permission("simulation.run", _P.project, Role.developer,
               "Simulate a model version or an endpoint now (a sandboxed job), and save the project's own "
               "scenario templates"),
    Permission("simulation.manage", _P.project, Role.maintainer,
               "Set or remove how a model is simulated: template, data or endpoint, automatic runs"),
    Permission("serving.read", _P.project, Role.viewer,
               "Read the project's endpoints, their versions and weights, metrics, samples and manifests"),
    Permission("serving.invoke", _P.project, Role.viewer,
               "Call an endpoint (with a hub token; an endpoint's API key calls only that endpoint)"),
    Permission("serving.label", _P.project, Role.developer,
               "Send the true labels of an endpoint's answered requests (its versions' accuracy, which rollout "
               "analyses judge); an endpoint's API key may too"),
    Permission("serving.deploy", _P.project, Role.developer,
               "Deploy model versions as endpoints, add canary or shadow versions, set traffic and scaling, "
               "undeploy versions"),
    Permission("serving.manage", _P.project, Role.maintainer,
               "Delete endpoints, and make or revoke the API keys that may call them"),
    Permission("release.read", _P.project, Role.viewer,
               "Read the project's release policy and releases: evidence, decisions, promotions, signatures"),
    Permission("release.request", _P.project, Role.developer,
               "Request a release of a model version (with its evidence) or of a configuration"),
    Permission("release.approve", _P.project, Role.developer,
               "Approve or reject another person's release request, where the policy's stage allows the role"),
    Permission("release.promote", _P.project, Role.maintainer,
               "Promote a release through dev, test, staging and prod"),
    Permission("release.policy", _P.project, Role.maintainer,
               "Set the project's release policy: evidence gates, approval stages, release windows"),
    Permission("release.rollout", _P.project, Role.maintainer,
               "Roll an approved release out onto an endpoint; promote, abort, retry or roll back its rollout"),
    Permission("release.key", _P.authenticated, None, "Read the platform's public release signing key"),
    Permission("device.read", _P.project, Role.viewer,
               "Read the project's device registry, its fleet by version and state, and its device rollouts"),
    Permission("device.manage", _P.project, Role.maintainer,
               "Register devices (making their tokens) and remove them (revoking their tokens)"),
    Permission("device.connect", _P.public, None,
               "A device's own route (check-in, TUF metadata and firmware): no hub identity, its device token, "
               "checked by the route; a device reaches only its own project"),
    Permission("dataset.read", _P.project, Role.viewer,
               "Read the project's datasets, versions, diffs, lineage and (masked) previews"),
    Permission("dataset.write", _P.project, Role.developer,
               "Register a dataset version (upload, restore) and declare job inputs"),
    Permission("dataset.manage", _P.project, Role.maintainer,
               "Change a dataset's masking and quality gate; read sensitive columns unmasked"),
    Permission("resource.read", _P.authenticated, None,
               "GPU, CPU and memory use now and over time; other projects' jobs on a GPU are hidden"),
    Permission("resource.usage", _P.authenticated, None,
               "GPU-hours per user or project, over the projects the caller belongs to"),
    Permission("lineage.read", _P.authenticated, None,
               "The lineage graph around a node; only nodes in the caller's projects appear"),
    Permission("annotation.read", _P.project, Role.viewer, "Read annotation tasks, their progress and agreement"),
    Permission("annotation.label", _P.project, Role.viewer, "Label the items assigned to you"),
    Permission("annotation.manage", _P.project, Role.developer,
               "Create annotation tasks, review labels, and export accepted labels as a dataset version"),
    Permission("webhook.read", _P.project, Role.maintainer,
               "Read the project's webhook subscriptions and delivery log (receiver URLs can be credentials)"),
    Permission("webhook.manage", _P.project, Role.maintainer,
               "Subscribe a URL to the project's events, send it a test event, or remove it"),
)


def permission(action: str) -> Permission:
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise KeyError(f"no permission is declared for action {action!r}") from None
