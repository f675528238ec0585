"""How many GPUs this machine offers jobs: ``$AITIP_GPUS`` when set, else NVML's count, else 0.

The job worker imports ``gpu_count`` from here; the reading itself lives in :mod:`aitip.resources.gpus`.
"""

from __future__ import annotations

from .gpus import GpuInventory, gpu_count, gpu_inventory

__all__ = ["GpuInventory", "gpu_count", "gpu_inventory"]
