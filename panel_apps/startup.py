"""``panel serve --setup`` script: import and exercise the plotting stack in a background thread, so
the server listens at once (the hub waits for it) and the first viewer does not pay the imports.

What is alive after the warm-up (modules, Bokeh's and Panel's classes and caches) then moves out of the
garbage collector's sight: Panel runs a full collection a few seconds after each session ends, and a full
collection that walks every imported object holds the server's loop for tens of milliseconds, often while
the next page is being made."""

from __future__ import annotations

import gc
import threading


def warm_up() -> None:
    from panel_apps import charts, components  # noqa: F401 - importing is the point

    charts.warm_up()
    gc.collect()
    gc.freeze()


threading.Thread(target=warm_up, name="aitip-dashboards-warm-up", daemon=True).start()
