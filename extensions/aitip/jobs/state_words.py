"""A job's state as a person reads it, in their language. The API's values stay as they are (``timed_out``);
the words have a context of their own, as a job that ``failed`` is not an evaluation that did not pass."""

from __future__ import annotations

from collections.abc import Callable

from ..i18n import shell_pgettext


def job_state_word(state: str, pgettext: Callable[[str, str], str] = shell_pgettext) -> str:
    """``state`` in the reader's language (``pgettext``: the CLI's by default, a page passes its own); a state
    this version does not know is shown as it is."""
    words = {"queued": pgettext("job state", "queued"), "starting": pgettext("job state", "starting"),
             "running": pgettext("job state", "running"), "succeeded": pgettext("job state", "succeeded"),
             "failed": pgettext("job state", "failed"), "cancelled": pgettext("job state", "cancelled"),
             "timed_out": pgettext("job state", "timed out")}
    return words.get(state, state)
