"""What a rollout says of itself (why it paused, stopped or ended; each analysis run's broken conditions): written
in English from these templates when it happens and kept with the rollout as its data, then read back in the
reader's language. A view finds the template a text was written from and says it in the reader's words, the
values as they were written; a text of no template here (a person's own reason) stays as written."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import CLAUSE_SEPARATOR
from ..i18n import N_, said_from_templates, template_pattern

# A service rollout (releases.progress, releases.rollouts).
PAUSED_UNTIL_PROMOTED = N_("paused until promoted")
ABORTED_BY_ANALYSIS = N_("aborted by analysis: {failures}")
INCONCLUSIVE = N_("analysis inconclusive: {failures}; promote to go on, or abort")
COMPLETED = N_("the canary takes all the traffic")
PROMOTED_FULLY = N_("promoted fully by hand")
ABORTED_BY_HAND = N_("aborted by hand")
ROLLED_BACK = N_("rolled back by hand: the stable version takes all the traffic")
SIGNATURE_BROKEN = N_("the release's signature does not hold ({reason})")
TRAFFIC_NOT_SET = N_("the endpoint's traffic could not be set: {error}")
# An analysis run's broken conditions, joined by FAILURES_JOINED.
TOO_FEW_REQUESTS = N_("{requests} canary requests, fewer than the {needed} needed")
TOO_FEW_LABELS = N_("{labelled} labelled rows, fewer than the {needed} needed to judge accuracy")
ACCURACY_BELOW = N_("accuracy {value} is below {bound}")
METRIC_ABOVE = N_("{metric} {value} is above {bound}")
FAILURES_JOINED = CLAUSE_SEPARATOR
# A device rollout (devices.waves, devices.service).
EMERGENCY_STOP = N_("emergency stop: {failed} of {size} devices of group {group} failed to install it, above its "
                    "error threshold of {threshold} %")
EVERY_GROUP_DONE = N_("every group reached its success threshold ({groups})")
PAUSED_AT = N_("paused at {at} UTC")

_MESSAGES = [(template_pattern(template), template) for template in (
    PAUSED_UNTIL_PROMOTED, ABORTED_BY_ANALYSIS, INCONCLUSIVE, COMPLETED, PROMOTED_FULLY, ABORTED_BY_HAND, ROLLED_BACK,
    SIGNATURE_BROKEN, TRAFFIC_NOT_SET, EMERGENCY_STOP, EVERY_GROUP_DONE, PAUSED_AT)]
_FAILURES = [(template_pattern(template), template)
             for template in (TOO_FEW_REQUESTS, TOO_FEW_LABELS, ACCURACY_BELOW, METRIC_ABOVE)]


def failures_said(failures: list[str], say: Callable[[str], str]) -> list[str]:
    """An analysis run's broken conditions in ``say``'s language."""
    return [said_from_templates(failure, _FAILURES, say) or failure for failure in failures]


def message_said(message: str, say: Callable[[str], str]) -> str:
    """A rollout's message in ``say``'s language (the broken conditions it names too)."""
    words = " ".join(message.split())
    for pattern, template in _MESSAGES:
        found = pattern.fullmatch(words)
        if found:
            values = found.groupdict()
            if "failures" in values:
                values["failures"] = say(FAILURES_JOINED).join(
                    failures_said(values["failures"].split(FAILURES_JOINED), say))
            return say(template).format(**values)
    return message
