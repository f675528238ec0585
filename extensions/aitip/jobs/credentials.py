"""Job credentials: the API token a job's kernel carries, valid for that attempt of that job only.

A running notebook calls the platform (``aitip.datasets.open`` records what it reads, the SDK reads
datasets and runs) as its owner, but never with the owner's own hub token: the worker mints a token
when it claims an attempt, keeps only its SHA-256 in the job's row, and hands the token to the kernel
as ``$AITIP_TOKEN``. The platform accepts it while that attempt is starting or running, as the job's
owner restricted to the job's project; a new attempt, the job's end or a lost lease retires it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from .tables import JobRecord

PREFIX = "aitip-job"
_TOKEN = re.compile(rf"^{PREFIX}\.([0-9]{{1,18}})\.([A-Za-z0-9_-]{{32,128}})$")
# The attempt states in which a job's kernel can be running.
LIVE_STATES = frozenset({"starting", "running"})


@dataclass(frozen=True)
class JobCredential:
    """Who a valid job token speaks for."""

    job_id: int
    attempt: int
    owner: str
    project: str


def mint(job_id: int) -> tuple[str, str]:
    """A new token for ``job_id`` and the digest to store; the token itself is never stored."""
    token = f"{PREFIX}.{job_id}.{secrets.token_urlsafe(32)}"
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_job_token(token: str) -> bool:
    """Whether ``token`` is meant as a job credential (so it is checked here, never sent to the hub)."""
    return token.startswith(PREFIX + ".")


def verify(session: Session, token: str) -> JobCredential | None:
    """The job a token speaks for, or None when it is malformed, wrong, or its attempt is over."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    job = session.get(JobRecord, int(match.group(1)))
    if job is None or not job.credential_sha256 or job.state not in LIVE_STATES:
        return None
    if not hmac.compare_digest(job.credential_sha256, digest(token)):
        return None
    return JobCredential(job.id, job.attempt, job.owner, job.project.name)
