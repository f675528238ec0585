"""The releases section of the operation table: the project's release policy, release requests, decisions,
promotions, signature checks and the platform's public signing key."""

from __future__ import annotations

from ..operations.table import Operation, Section
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
    Operation("releases.signing_key", "release.key", "GET", "release-signing-key",
              "The platform's public key that signs releases (Ed25519, PEM), to check them without the platform",
              response=SigningKey, call="releases.signing_key"),
))
