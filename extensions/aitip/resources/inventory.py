"""How many GPUs this machine offers jobs: NVML where a driver is present, configuration otherwise."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("aitip.resources")


def gpu_count() -> int:
    """``$AITIP_GPUS`` when set; else the NVML device count; else 0 (no driver, no GPU)."""
    configured = os.environ.get("AITIP_GPUS")
    if configured is not None:
        return max(0, int(configured))
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound and friends: no usable GPU
        log.info("no GPU: NVML unavailable (%s)", exc)
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()
