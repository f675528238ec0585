"""jupyter-server-proxy entry point (``aitip-dashboards``): the same dashboards inside a user's
JupyterLab at ``/user/<name>/aitip-dashboards/``, started on first visit.

The user's server authenticates the browser and checks websocket origins; Panel listens on a Unix
socket in a private temporary directory, so no other local user can reach it, and calls the platform
with the server's own token (the server's owner) through its workspace relay."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

NAME = "aitip-dashboards"


def launcher_category() -> str:
    """The launcher's Notebook group as JupyterLab names it in its language (a group of another name would stand
    apart), read in the user's server as it starts."""
    from jupyterlab.commands import get_user_settings_dir

    from aitip.i18n import ENVIRONMENT_VARIABLE
    from aitip.server.lab_language import lab_locale, lab_word

    return lab_word("Notebook", lab_locale(Path(get_user_settings_dir()), os.environ.get(ENVIRONMENT_VARIABLE)))


def server_process() -> dict[str, Any]:
    return {
        "command": [sys.executable, "-m", "panel_apps.serve", "--workspace", "--unix-socket", "{unix_socket}",
                    "--prefix", "{base_url}" + NAME],
        "unix_socket": True,
        "absolute_url": True,
        "timeout": 120,
        "launcher_entry": {"title": "AITIP dashboards", "icon_path": str(Path(__file__).with_name("icon.svg")),
                           "category": launcher_category()},
        "new_browser_tab": True,
    }
