"""Who may decide on a release request, and which approval stage a decision fills: the policy's stages (a role
and a count each), in their order where the policy says so. Nobody decides on their own request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import Listed, Phrase
from ..i18n import N_
from ..identity.roles import Role


@dataclass(frozen=True)
class Stage:
    role: Role
    count: int


@dataclass(frozen=True)
class Placement:
    """Where a decision goes: the stage it fills, or why it may not be made (``refusal``, with ``forbidden``
    telling a 403 from a 409)."""

    stage: int | None
    refusal: Phrase | None = None
    forbidden: bool = False


def filled(stages: Sequence[Stage], approvals: Sequence[int]) -> list[int]:
    """How many approvals each stage holds (``approvals``: the stage index of each)."""
    counts = [0] * len(stages)
    for stage in approvals:
        counts[stage] += 1
    return counts


def complete(stages: Sequence[Stage], approvals: Sequence[int]) -> bool:
    return all(have >= stage.count for have, stage in zip(filled(stages, approvals), stages, strict=True))


def place(stages: Sequence[Stage], ordered: bool, approvals: Sequence[int], *, decider: str, requester: str,
          role: Role, deciders: Sequence[str]) -> Placement:
    """The stage an approval by ``decider`` (holding ``role``) fills. A rejection is placed the same way: whoever
    could approve the next open stage may reject instead."""
    if decider == requester:
        return Placement(None, Phrase(N_("nobody decides on their own release request")), forbidden=True)
    if decider in deciders:
        return Placement(None, Phrase(N_("{decider} has decided on this request already"), decider=decider))
    counts = filled(stages, approvals)
    open_stages = [index for index, stage in enumerate(stages) if counts[index] < stage.count]
    if not open_stages:
        return Placement(None, Phrase(N_("every approval stage is complete")))
    candidates = open_stages[:1] if ordered else open_stages
    for index in candidates:
        if role.at_least(stages[index].role):
            return Placement(index)
    needed = Listed([stage_role.word for stage_role in sorted({stages[index].role for index in candidates})],
                    N_(" or "))
    return Placement(None, Phrase(N_("the next approval stage needs the {needed} role; you are {role}") if ordered else
                                  N_("an open approval stage needs the {needed} role; you are {role}"),
                                  needed=needed, role=role.word), forbidden=True)
