"""AITIP: the AI Train-Infer-Sim Platform.

The import package holds the domain services, the engine adapters, the catalog, the Jupyter Server
extension (``aitip.server``), the JupyterHub integration (``aitip.hub``), the SDK and the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .client import AitipAPIError as AitipAPIError
    from .client import Client as Client
    from .client import NotConfigured as NotConfigured

# What ``import aitip`` offers a notebook or a program: the SDK's client and what it raises.
SDK_NAMES = ("Client", "AitipAPIError", "NotConfigured")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Where Jupyter Server finds the extension (enabled through jupyter_server_config.d)."""
    from .server.app import AitipExtension

    return [{"module": "aitip", "app": AitipExtension}]


def __getattr__(name: str) -> Any:
    # The SDK is imported lazily so that ``import aitip`` stays cheap inside kernels and the hub.
    if name in SDK_NAMES:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'aitip' has no attribute {name!r}")
