"""JupyterLab itself in the language of the page that started the server.

The hub hands a user's server ``AITIP_LANG`` (``aitip.hub.language.spawning_language``); the platform's own words
follow it at once, but JupyterLab reads its language from the person's settings (Settings → Language, with the
``jupyterlab-language-pack-zh-CN`` words installed). So the workspace writes that setting as the page said, and
keeps writing it at each start while the file is still the one it wrote: once the person chooses a language in
JupyterLab (which rewrites the file), their choice stands."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import json5

from ..i18n import CHINESE, ENGLISH, normalize

PLUGIN_FOLDER = Path("@jupyterlab") / "translation-extension"
SETTINGS_FILE = "plugin.jupyterlab-settings"
# JupyterLab's names: English is its default "en", Chinese the locale its language pack registers.
LAB_LOCALES = {ENGLISH: "en", CHINESE: "zh_CN"}
_WRITTEN_BY_AITIP = ("// Written by AITIP: the language of the page that started this server. Choose one in\n"
                     "// Settings → Language and AITIP leaves your choice alone.\n")


def settings_text(language: str) -> str:
    """The settings file AITIP writes for ``language`` (JSON5, as JupyterLab keeps its settings)."""
    return _WRITTEN_BY_AITIP + json.dumps({"locale": LAB_LOCALES[language]}, indent=4) + "\n"


def _persons_own(settings_dir: Path) -> str | None:
    """The settings file's text where the person wrote it (through JupyterLab); None where it is absent or
    AITIP's."""
    try:
        current = (settings_dir / PLUGIN_FOLDER / SETTINGS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return None if current in {settings_text(known) for known in LAB_LOCALES} else current


def follow_page_language(settings_dir: Path, language: str | None) -> bool:
    """Set JupyterLab's language to ``language`` (``AITIP_LANG``) unless the person set one of their own; True
    when the file was written."""
    chosen = normalize(language)
    if chosen not in LAB_LOCALES or _persons_own(settings_dir) is not None:
        return False
    path = settings_dir / PLUGIN_FOLDER / SETTINGS_FILE
    wanted = settings_text(chosen)
    if path.is_file() and path.read_text(encoding="utf-8") == wanted:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as partial:
        partial.write(wanted)
    os.replace(partial.name, path)
    return True


def lab_locale(settings_dir: Path, language: str | None) -> str:
    """The locale JupyterLab shows: the person's own choice where they made one, else the page's (the file this
    module writes, or is about to); ``default`` where neither says."""
    own = _persons_own(settings_dir)
    if own is not None:
        try:
            return str(json5.loads(own).get("locale") or "default")
        except ValueError:
            return "default"
    return LAB_LOCALES.get(normalize(language) or "", "default")


def lab_word(message: str, locale: str) -> str:
    """``message`` as JupyterLab itself writes it in ``locale`` (its language pack's word), so that what the
    platform adds to JupyterLab (the launcher's dashboards entry) lands in JupyterLab's own groups."""
    if locale in ("default", LAB_LOCALES[ENGLISH]):
        return message
    from jupyterlab_server.translation_utils import get_language_pack

    words, _ = get_language_pack(locale)
    said = (words.get("jupyterlab") or {}).get(message)
    return said[0] if isinstance(said, list) and said and said[0] else message
