"""``panel serve --setup`` script: import and exercise the plotting stack in a background thread, so
the server listens at once (the hub waits for it) and the first viewer does not pay the imports."""

from __future__ import annotations

import threading


def warm_up() -> None:
    from panel_apps import charts, components  # noqa: F401 - importing is the point

    charts.warm_up()


threading.Thread(target=warm_up, name="aitip-dashboards-warm-up", daemon=True).start()
