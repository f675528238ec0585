"""Catalog records as the API's answers."""

from __future__ import annotations

from typing import Any

from .models import (
    ENVIRONMENTS,
    ApprovalStage,
    Decision,
    Evidence,
    Firmware,
    Promotion,
    Release,
    ReleasePolicy,
    ReleasePolicySet,
    SignatureInfo,
)
from .signing import ALGORITHM
from .tables import ReleasePolicyRecord, ReleaseRecord


def next_environment(environment: str) -> str | None:
    index = ENVIRONMENTS.index(environment)
    return ENVIRONMENTS[index + 1] if index + 1 < len(ENVIRONMENTS) else None


def policy_answer(project: str, record: ReleasePolicyRecord | None) -> ReleasePolicy:
    if record is None:
        return ReleasePolicy(project=project, settings=ReleasePolicySet(), default=True)
    return ReleasePolicy(project=project, settings=ReleasePolicySet.model_validate(record.settings, strict=False),
                         default=False, updated_by=record.updated_by, updated_at=record.updated_at)


def release_answer(record: ReleaseRecord) -> Release:
    content: dict[str, Any] = record.content
    subject = content.get("subject", {})
    return Release(
        id=record.id, project=record.project.name, kind=record.kind, name=record.name, version=record.version,
        state=record.state, environment=record.environment, next_environment=next_environment(record.environment),
        model=subject.get("model"), model_version=subject.get("model_version"), dataset=subject.get("dataset"),
        dataset_version=subject.get("dataset_version"), configuration=subject.get("configuration"),
        firmware=Firmware.model_validate(subject["firmware"]) if "firmware" in subject else None,
        endpoint=subject.get("endpoint"), settings=subject.get("settings"),
        changelog=content.get("changelog", ""), metadata=content.get("metadata", {}),
        evidence=[Evidence.model_validate(item) for item in content.get("evidence", [])],
        approvals_needed=[ApprovalStage.model_validate(stage, strict=False)
                          for stage in record.approvals.get("stages", [])],
        ordered=bool(record.approvals.get("ordered")),
        decisions=[Decision(user=d.user, decision=d.decision, stage=d.stage, role=d.role, comment=d.comment, at=d.at)
                   for d in record.decisions],
        promotions=[Promotion(environment=p.environment, by=p.by, at=p.at) for p in record.promotions],
        signature=SignatureInfo(algorithm=ALGORITHM, key_id=record.key_id, content_sha256=record.content_sha256,
                                signature=record.signature),
        content=content, created_by=record.created_by, created_at=record.created_at)
