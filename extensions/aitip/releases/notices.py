"""Release and rollout events to the project's webhook subscribers (``release.*``, ``rollout.*``), queued in the
transaction of the change they report (through the webhooks service's ``publish_in``) and sent once it commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .tables import ReleaseRecord, RolloutRecord


def release_payload(release: ReleaseRecord, by: str) -> dict[str, Any]:
    subject = release.content.get("subject", {})
    return {"id": release.id, "project": release.project.name, "kind": release.kind, "name": release.name,
            "version": release.version, "state": release.state, "environment": release.environment,
            "model": subject.get("model"), "model_version": subject.get("model_version"),
            "dataset": subject.get("dataset"), "dataset_version": subject.get("dataset_version"),
            "content_sha256": release.content_sha256, "by": by}


def rollout_payload(rollout: RolloutRecord, by: str) -> dict[str, Any]:
    return {"id": rollout.id, "project": rollout.project.name, "release_id": rollout.release_id,
            "release": f"{rollout.release.name} {rollout.release.version}", "endpoint": rollout.endpoint,
            "stable_version": rollout.stable_version, "canary_version": rollout.canary_version,
            "step": rollout.step, "weight": rollout.weight, "state": rollout.state, "message": rollout.message,
            "by": by}


class ReleaseNotices:
    """Nothing is sent where the platform runs without webhooks."""

    def __init__(self, webhooks: Any = None) -> None:
        self.webhooks = webhooks

    def release(self, session: Session, release: ReleaseRecord, event: str, by: str) -> None:
        if self.webhooks is not None:
            self.webhooks.publish_in(session, release.project.name, f"release.{event}", release_payload(release, by))

    def rollout(self, session: Session, rollout: RolloutRecord, event: str, by: str) -> None:
        if self.webhooks is not None:
            self.webhooks.publish_in(session, rollout.project.name, f"rollout.{event}", rollout_payload(rollout, by))

    def sent(self) -> None:
        if self.webhooks is not None:
            self.webhooks.notify()
