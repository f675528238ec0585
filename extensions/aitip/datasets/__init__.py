"""Datasets: a DVC-backed registry of versioned data with quality reports, lineage and masking.

In notebooks, ``aitip.datasets.open/path/to_pandas(name, version)`` read versions and ``job_inputs()`` lists
a job's declared ones (see ``sdk``); they are imported on first use so the platform's own imports of this
package stay light.
"""

from __future__ import annotations

from typing import Any

_SDK = ("open", "path", "to_pandas", "job_inputs", "DatasetsAPI")


def __getattr__(name: str) -> Any:
    if name in _SDK:
        from . import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'aitip.datasets' has no attribute {name!r}")
