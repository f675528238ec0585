"""Set and remove a registered model's aliases from the Models page (``champion``, ``staging``...), on the
project's own versions, for those the permission table allows (``model.manage``); others see why not."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape
from typing import Any

import panel as pn

from aitip.client import AitipAPIError
from aitip.identity.permissions import permission
from panel_apps.api import DashboardAPI
from panel_apps.components import Messages, NotSignedIn, role_at_least, role_in, role_words
from panel_apps.language import _

MANAGE_ACTION = "model.manage"
ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")


def alias_refusal(me: dict[str, Any], project: str | None, model: str | None) -> str | None:
    """Why the viewer may not change aliases here (None: they may)."""
    if not model:
        return _("Choose a model to set its aliases.")
    least = permission(MANAGE_ACTION).min_role
    role = role_in(me, project or "")
    if me.get("admin") or (least is not None and role_at_least(role, least.value)):
        return None
    return _("Setting an alias needs the {least} role in {project}; you are {role}.").format(
        least=role_words(least.value if least else None), project=project, role=role_words(role))


def alias_problem(alias: str) -> str | None:
    """The platform's alias rule, said before sending (it checks again)."""
    if not ALIAS.fullmatch(alias):
        return _("An alias is 1-255 letters, digits, '_' or '-'.")
    if alias.lower() == "latest" or re.fullmatch(r"[vV](ersion)?[0-9]+", alias):
        return _("'{alias}' is reserved: it already names a version.").format(alias=alias)
    return None


class AliasEditor:
    """The controls for one model; ``on_changed(model)`` gets the model as the platform answered."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages,
                 on_changed: Callable[[dict[str, Any]], None]) -> None:
        self.api, self.me, self.messages, self.on_changed = api, me, messages, on_changed
        self.project: str | None = None
        self.model: dict[str, Any] | None = None
        self.alias = pn.widgets.TextInput(name=_("Alias"), placeholder="champion", width=180,
                                          css_classes=["alias-name"])
        self.version = pn.widgets.Select(name=_("Version"), options={}, width=120, css_classes=["alias-version"])
        self.set_button = pn.widgets.Button(name=_("Set alias"), button_type="primary", width=120, align="end",
                                            css_classes=["set-alias"])
        self.existing = pn.widgets.Select(name=_("Alias to remove"), options={}, width=180,
                                          css_classes=["alias-existing"])
        self.remove_button = pn.widgets.Button(name=_("Remove alias"), button_type="danger", width=130,
                                               align="end", css_classes=["remove-alias"])
        self.reason = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10), css_classes=["alias-reason"])
        self.set_button.on_click(lambda _event: self.do_set())
        self.remove_button.on_click(lambda _event: self.do_remove())

    def show(self, project: str | None, model: dict[str, Any] | None) -> None:
        self.project, self.model = project, model
        versions = sorted((int(v["version"]) for v in (model or {}).get("versions", [])), reverse=True)
        self.version.options = {f"v{number}": number for number in versions}
        if versions and self.version.value not in versions:
            self.version.value = versions[0]  # the newest, as a person would most often point an alias at
        aliases = sorted((model or {}).get("aliases", {}))
        self.existing.options = {f"@{alias}": alias for alias in aliases}
        refusal = alias_refusal(self.me, project, model["name"] if model else None)
        for widget in (self.alias, self.version, self.set_button):
            widget.disabled = refusal is not None or not versions
        self.existing.disabled = self.remove_button.disabled = refusal is not None or not aliases
        self.reason.object = ("" if refusal is None else
                              f"<span class='alias-refused' style='color:#555'>{escape(refusal)}</span>")

    def do_set(self) -> None:
        self.messages.reset()
        alias = self.alias.value.strip()
        problem = alias_problem(alias)
        if problem is not None or self.model is None:
            self.reason.object = f"<span class='alias-refused' style='color:#a33'>{escape(problem or '')}</span>"
            return
        self._change(_("set alias {alias} of {model}").format(alias=alias, model=self.model["name"]),
                     lambda: self.api.op("models.set_alias", project=self.project, model=self.model["name"],
                                         alias=alias, version=int(self.version.value)))

    def do_remove(self) -> None:
        self.messages.reset()
        if self.model is None or not self.existing.value:
            return
        alias = self.existing.value
        self._change(_("remove alias {alias} of {model}").format(alias=alias, model=self.model["name"]),
                     lambda: self.api.op("models.delete_alias", project=self.project, model=self.model["name"],
                                         alias=alias))

    def _change(self, doing: str, call: Callable[[], Any]) -> None:
        try:
            model = call()
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, doing)
            return
        self.messages.info(_("Done: {doing}.").format(doing=doing))
        self.alias.value = ""
        self.on_changed(model)

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.alias, self.version, self.set_button, self.existing, self.remove_button),
            self.reason, sizing_mode="stretch_width", css_classes=["alias-editor"],
        )
