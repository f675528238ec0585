"""One schema migration at a time in a process: Alembic's ``context`` and ``op`` are module-wide proxies, so the
catalog's migration and MLflow's store creation (both Alembic) running in two threads at once undo each other's
set-up (``KeyError: 'script'``). A test platform that stops while its MLflow warm-up still runs, and the next one
that starts, met so."""

from __future__ import annotations

import threading

MIGRATIONS = threading.RLock()
