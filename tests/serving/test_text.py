"""What a person reads of an endpoint's manifests in a terminal: the YAML itself, ready for ``kubectl apply -f``,
with what it holds and what offline validation found as comments, so the file still loads as the same manifests."""

from __future__ import annotations

import copy

import yaml

from aitip.serving.kubernetes import EndpointSpec, VariantSpec, render, to_yaml, validate
from aitip.serving.text import manifests_text


def answer(manifests: list[dict]) -> dict:
    return {"yaml": to_yaml(manifests), "manifests": manifests, "problems": validate(manifests)}


def test_valid_manifests_print_as_the_yaml_they_are_headed_by_what_they_hold() -> None:
    manifests = render(EndpointSpec(project="vision", endpoint="digits", model="digits",
                                    variants=(VariantSpec(1, 80), VariantSpec(2, 20))))
    text = manifests_text(answer(manifests))
    head = [line for line in text.splitlines() if line.startswith("#")][:2]
    assert head[0].startswith(f"# {len(manifests)} manifests: Deployment/") and "HorizontalPodAutoscaler/" in head[0]
    assert head[1] == "# offline validation (kubernetes-validate) found no problems"
    assert list(yaml.safe_load_all(text)) == manifests


def test_each_problem_is_named_in_a_comment_and_the_yaml_still_loads() -> None:
    manifests = render(EndpointSpec(project="vision", endpoint="digits", model="digits",
                                    variants=(VariantSpec(1, 100),)))
    broken = copy.deepcopy(manifests)
    broken[0]["spec"]["replicaz"] = 2
    text = manifests_text(answer(broken))
    lines = text.splitlines()
    assert lines[1] == "# offline validation found 1 problem:"
    assert lines[2].startswith("#   - Deployment/") and "replicaz" in lines[2], lines[2]
    assert list(yaml.safe_load_all(text)) == broken
