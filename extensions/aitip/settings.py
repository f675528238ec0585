"""Where AITIP keeps its state, read from ``AITIP_*`` environment variables with embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


SYSTEM_HOME = Path("/var/lib/aitip")


def aitip_home() -> Path:
    """The platform's state directory: ``$AITIP_HOME``; else, for root (users get accounts of their own,
    whose homes must be reachable), ``/var/lib/aitip`` unless a home from before exists in root's data dir;
    else the user's data dir."""
    configured = os.environ.get("AITIP_HOME")
    if configured:
        return Path(configured).expanduser().resolve()
    personal = Path(platformdirs.user_data_dir("aitip"))
    if os.geteuid() == 0 and os.environ.get("AITIP_SHARED_ACCOUNT", "") not in ("1", "true", "yes", "on") \
            and not personal.exists():
        return SYSTEM_HOME
    return personal.resolve()


def catalog_url(home: Path | None = None) -> str:
    """The catalog database URL: ``$AITIP_CATALOG_URL``, else SQLite under the AITIP home."""
    configured = os.environ.get("AITIP_CATALOG_URL")
    if configured:
        return configured
    return f"sqlite:///{(home or aitip_home()) / 'catalog.sqlite'}"


def user_config_dir() -> Path:
    """Where the CLI keeps credentials written by ``aitip login``."""
    configured = os.environ.get("AITIP_CONFIG_DIR")
    return Path(configured).expanduser() if configured else Path(platformdirs.user_config_dir("aitip"))


SERVING_METRICS_SECONDS = 5.0


def serving_metrics_seconds() -> float:
    """How often serving writes each endpoint's measurements as metric points: ``$AITIP_SERVING_METRICS_SECONDS``,
    else 5."""
    configured = os.environ.get("AITIP_SERVING_METRICS_SECONDS", "").strip()
    if not configured:
        return SERVING_METRICS_SECONDS
    try:
        return float(configured)
    except ValueError:
        raise ValueError(f"$AITIP_SERVING_METRICS_SECONDS is a number of seconds, not {configured!r}") from None
