"""The releases section of the operation table: the project's release policy, release requests, decisions,
promotions, signature checks and the platform's public signing key."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .rollout_models import PromoteBody, Rollout, RolloutList, RolloutListQuery, RolloutStart
from .models import (
    DecisionSet,
    PromotionSet,
    Release,
    ReleaseList,
    ReleaseListQuery,
    ReleasePolicy,
    ReleasePolicySet,
    ReleaseRequest,
    SigningKey,
    Verification,
)

_RELEASES = "projects/{project}/releases"
_RELEASE = f"{_RELEASES}/{{release}}"
_ROLLOUT = "projects/{project}/rollouts/{rollout}"

SECTION = Section("releases", "Releases", (
    Operation("release_policy.get", "release.read", "GET", "projects/{project}/release-policy",
              "The project's release policy: evidence gates, approval stages, release windows",
              response=ReleasePolicy, call="releases.get_policy"),
    Operation("release_policy.set", "release.policy", "PUT", "projects/{project}/release-policy",
              "Set the project's release policy (requests already made keep their approval stages)",
              body=ReleasePolicySet, response=ReleasePolicy, call="releases.set_policy"),
    Operation("releases.list", "release.read", "GET", _RELEASES,
              "The project's releases, newest first, with their evidence, decisions and promotions",
              query=ReleaseListQuery, response=ReleaseList, call="releases.list"),
    Operation("releases.get", "release.read", "GET", _RELEASE,
              "One release: what was signed, its evidence, decisions and promotions", response=Release,
              call="releases.get"),
    Operation("releases.request", "release.request", "POST", _RELEASES,
              "Request a release; refused (422) listing the evidence the policy asks for that is missing; "
              "signed by the platform", body=ReleaseRequest, response=Release, status=201,
              call="releases.request", location="id"),
    Operation("releases.decide", "release.approve", "POST", f"{_RELEASE}/decisions",
              "Approve or reject a release request, as the policy's approval stages allow (never one's own)",
              body=DecisionSet, response=Release, call="releases.decide"),
    Operation("releases.promote", "release.promote", "POST", f"{_RELEASE}/promotions",
              "Promote a release to the next environment (dev, test, staging, prod); its signature is checked "
              "first, staging and prod need approval, prod the release windows", body=PromotionSet,
              response=Release, call="releases.promote"),
    Operation("releases.verify", "release.read", "GET", f"{_RELEASE}/verification",
              "Check the release's signature against its content now", response=Verification,
              call="releases.verify"),
    Operation("rollouts.start", "release.rollout", "POST", f"{_RELEASE}/rollouts",
              "Roll an approved release of a model version (model, service, or firmware that embeds one) out onto "
              "an endpoint in steps (set_weight, pause, analysis); answers once its first step is taken, then goes "
              "on by itself", body=RolloutStart, response=Rollout,
              status=201, call="rollouts.start_rollout", location="id", long_running=True),
    Operation("rollouts.list", "release.read", "GET", "projects/{project}/rollouts",
              "The project's rollouts, newest first", query=RolloutListQuery, response=RolloutList,
              call="rollouts.list_rollouts"),
    Operation("rollouts.get", "release.read", "GET", _ROLLOUT,
              "One rollout: its step, the canary's weight, its analysis runs and why it stopped",
              response=Rollout, call="rollouts.get_rollout"),
    Operation("rollouts.promote", "release.rollout", "POST", f"{_ROLLOUT}/promote",
              "Past the current pause or analysis (full: straight to 100 %)", body=PromoteBody, response=Rollout,
              call="rollouts.promote_rollout"),
    Operation("rollouts.abort", "release.rollout", "POST", f"{_ROLLOUT}/abort",
              "Abort: the canary's weight to 0 at once", response=Rollout, call="rollouts.abort_rollout"),
    Operation("rollouts.retry", "release.rollout", "POST", f"{_ROLLOUT}/retry",
              "Run a degraded rollout again from its first step", response=Rollout, call="rollouts.retry_rollout"),
    Operation("rollouts.rollback", "release.rollout", "POST", f"{_ROLLOUT}/rollback",
              "Roll back: the stable version takes all the traffic again", response=Rollout,
              call="rollouts.rollback_rollout"),
    Operation("releases.signing_key", "release.key", "GET", "release-signing-key",
              "The platform's public key that signs releases (Ed25519, PEM), to check them without the platform",
              response=SigningKey, call="releases.signing_key"),
))
