"""Kubernetes mode: KubeSpawner with CPU and GPU profiles users pick at spawn time. The default profiles are
named and described in the spawn page's language; profiles from a file are shown as their author wrote them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..i18n import ENVIRONMENT_VARIABLE, N_, translator
from .language import current_language, spawning_language

GPU_RESOURCE = "nvidia.com/gpu"
PANEL_PREVIEW_OFF = "--ServerApp.jpserver_extensions=panel.io.jupyter_server_extension=False"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def _sized(cpu: float, memory: str) -> dict[str, Any]:
    """Guarantee half the CPUs (bursting to all) and all the memory (never overcommitted)."""
    return {"cpu_guarantee": cpu / 2, "cpu_limit": cpu, "mem_guarantee": memory, "mem_limit": memory}


CPU_NAME = N_("CPU only, {cpu} CPU, {memory}")
CPU_DESCRIPTION = N_("JupyterLab for data work and small models; no GPU.")
GPU_NAME = N_("{count} x NVIDIA GPU, {cpu} CPU, {memory}")
GPU_DESCRIPTION = N_("JupyterLab on a GPU node with {count} dedicated GPU(s); the aitip-gpu kernel is ready.")


def _as_written(message: str) -> str:
    return message


def gpu_profile(count: int, *, cpu: float, memory: str, node_selector: dict[str, str] | None = None,
                default: bool = False, said: Callable[[str], str] = _as_written) -> dict[str, Any]:
    """A profile asking the scheduler for ``count`` NVIDIA GPUs on a GPU node (``said``: its words' language)."""
    return {
        "display_name": said(GPU_NAME).format(count=count, cpu=f"{cpu:g}", memory=memory),
        "slug": f"gpu-{count}",
        "description": said(GPU_DESCRIPTION).format(count=count),
        "default": default,
        "kubespawner_override": {
            **_sized(cpu, memory),
            "extra_resource_guarantees": {GPU_RESOURCE: str(count)},
            "extra_resource_limits": {GPU_RESOURCE: str(count)},
            "node_selector": node_selector or {"nvidia.com/gpu.present": "true"},
            "tolerations": [GPU_TOLERATION],
            "environment": {"AITIP_KERNEL_DEVICE": "cuda", "NVIDIA_VISIBLE_DEVICES": "all"},
        },
    }


def cpu_profile(*, cpu: float, memory: str, default: bool = True,
                said: Callable[[str], str] = _as_written) -> dict[str, Any]:
    return {
        "display_name": said(CPU_NAME).format(cpu=f"{cpu:g}", memory=memory),
        "slug": "cpu",
        "description": said(CPU_DESCRIPTION),
        "default": default,
        "kubespawner_override": {
            **_sized(cpu, memory),
            "environment": {"AITIP_KERNEL_DEVICE": "cpu"},
        },
    }


def default_profiles(said: Callable[[str], str] = _as_written) -> list[dict[str, Any]]:
    return [
        cpu_profile(cpu=2, memory="8G", said=said),
        gpu_profile(1, cpu=8, memory="48G", default=False, said=said),
        gpu_profile(4, cpu=32, memory="192G", default=False, said=said),
    ]


def default_profiles_in_page_language(_spawner: Any = None) -> list[dict[str, Any]]:
    """KubeSpawner's ``profile_list`` when no file names the profiles: asked for while the spawn page (or the
    spawn it posts) is being answered, so in that request's language. The slugs a spawn picks by stay the same."""
    return default_profiles(translator(current_language()).gettext)


def load_profiles(path: str) -> list[dict[str, Any]]:
    """Profiles from a JSON file of KubeSpawner profiles (``$AITIP_K8S_PROFILES``), checked at the hub's start."""
    profiles = json.loads(Path(path).read_text())
    if not isinstance(profiles, list) or not all(isinstance(p, dict) and "display_name" in p for p in profiles):
        raise ValueError(f"{path}: expected a JSON list of KubeSpawner profiles with display_name")
    return profiles


def configure_kubespawner(c: Any, *, platform_url: str, token_scopes: list[str]) -> None:
    """KubeSpawner settings for user pods; the image holds the aitip package in workspace mode."""
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.image = os.environ.get("AITIP_IMAGE", "ghcr.io/aitip/workspace:0.1.0")
    c.KubeSpawner.namespace = os.environ.get("AITIP_K8S_NAMESPACE", "aitip")
    c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
    # As for local servers: Panel's auto-enabled preview extension costs seconds per spawn and is not used
    # (the dashboards go through jupyter-server-proxy). No allow_root: the pod runs as its own user.
    c.KubeSpawner.args = [PANEL_PREVIEW_OFF]
    c.KubeSpawner.default_url = "/lab"
    c.KubeSpawner.profile_list = load_profiles(path) if (path := os.environ.get("AITIP_K8S_PROFILES")) \
        else default_profiles_in_page_language
    c.KubeSpawner.environment = {"AITIP_PLATFORM_URL": platform_url, "AITIP_MODE": "workspace",
                                 ENVIRONMENT_VARIABLE: spawning_language}
    c.KubeSpawner.server_token_scopes = token_scopes
    c.KubeSpawner.start_timeout = 600
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.pvc_name_template = "aitip-home-{user_server}"
    c.KubeSpawner.storage_capacity = os.environ.get("AITIP_K8S_STORAGE", "20Gi")
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "aitip-home-{user_server}"}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
