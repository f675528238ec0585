"""The platform's release signature: made once, kept private, and broken by any change of the content."""

from __future__ import annotations

import copy
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from aitip.releases.signing import ReleaseSigner, Signature, canonical, check

CONTENT = {"project": "alpha", "kind": "model", "name": "digits", "version": "1.0.0",
           "subject": {"model": "digits", "model_version": 3, "dataset": "digits", "dataset_version": 2},
           "evidence": [{"kind": "evaluation", "id": 7}], "changelog": "首个版本", "metadata": {}}


def test_the_key_is_made_once_private_and_loaded_again(tmp_path: Path) -> None:
    first = ReleaseSigner(tmp_path / "signing")
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.path.parent.stat().st_mode) == 0o700
    again = ReleaseSigner(tmp_path / "signing")
    assert again.key_id == first.key_id and len(first.key_id) == 16
    assert again.check(CONTENT, first.sign(CONTENT)).valid


def test_canonical_content_ignores_key_order_but_not_values() -> None:
    reordered = dict(reversed(list(CONTENT.items())))
    assert canonical(reordered) == canonical(CONTENT)
    assert "首个版本".encode() in canonical(CONTENT)


@pytest.mark.parametrize("tamper, reason", [
    (lambda c: c["subject"].update(model_version=4), "its SHA-256 differs"),
    (lambda c: c["evidence"].append({"kind": "simulation", "id": 9}), "its SHA-256 differs"),
    (lambda c: c.update(changelog="首个版本 "), "its SHA-256 differs"),
])
def test_any_change_of_the_content_breaks_the_signature(tmp_path: Path, tamper, reason: str) -> None:
    signer = ReleaseSigner(tmp_path)
    signature = signer.sign(CONTENT)
    changed = copy.deepcopy(CONTENT)
    tamper(changed)
    outcome = signer.check(changed, signature)
    assert not outcome.valid and reason in outcome.english


def test_a_forged_digest_or_signature_or_another_key_is_refused(tmp_path: Path) -> None:
    signer, other = ReleaseSigner(tmp_path / "a"), ReleaseSigner(tmp_path / "b")
    signature = signer.sign(CONTENT)
    changed = copy.deepcopy(CONTENT)
    changed["subject"]["model_version"] = 4
    from aitip.releases.signing import digest

    forged = Signature(signature.key_id, digest(changed), signature.value)  # the digest recomputed, not the signature
    refused = signer.check(changed, forged)
    assert refused.english == "the signature does not verify against the content"
    assert refused.reason is not None and refused.reason.in_language("zh_CN") == "签名无法针对内容验证通过"
    by_other = other.sign(CONTENT)
    assert "not the platform's key" in signer.check(CONTENT, by_other).english
    relabelled = Signature(signer.key_id, by_other.content_sha256, by_other.value)
    assert not signer.check(CONTENT, relabelled).valid
    garbage = Signature(signer.key_id, signature.content_sha256, "not base64!")
    assert not signer.check(CONTENT, garbage).valid


def test_anyone_checks_a_release_with_the_public_key_alone(tmp_path: Path) -> None:
    signer = ReleaseSigner(tmp_path)
    public = serialization.load_pem_public_key(signer.public_pem().encode())
    assert check(public, signer.key_id, CONTENT, signer.sign(CONTENT)).valid
