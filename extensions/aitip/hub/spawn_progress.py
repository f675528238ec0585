"""What a server's start says while the spawn-pending page waits, in the request's language. JupyterHub (its
spawner's progress and the progress API's last event) and KubeSpawner (its default slow-start notice) send these
in English over the progress stream; the ``spawn_pending.html`` override writes each one it knows in the page's
language as it arrives. A Kubernetes event (``<time> [Normal] Pulling image ...``) stays as Kubernetes wrote it,
as a log line does. tests/hub check each message against JupyterHub's and KubeSpawner's sources."""

from __future__ import annotations

from ..i18n import N_

# JupyterHub 6.1: spawner.py ``_generate_progress`` and apihandlers/users.py ``SpawnProgressAPIHandler``.
JUPYTERHUB_PROGRESS = (
    N_("Server requested"), N_("Spawning server..."), N_("Server ready at {url}"), N_("Spawn failed"),
    N_("Spawn cancelled"), N_("Spawn failed: {reason}"),
)
# KubeSpawner 7: the default ``slow_spawn_message``.
KUBESPAWNER_PROGRESS = (
    N_("Server launch is taking longer than expected. Please be patient! Current time spent waiting: {seconds} "
       "seconds."),
)
SPAWN_PROGRESS = (*JUPYTERHUB_PROGRESS, *KUBESPAWNER_PROGRESS)
