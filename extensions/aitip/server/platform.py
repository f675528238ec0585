"""Entry point of the platform service: ``jupyterhub-singleuser`` with only the aitip extension,
in platform mode, with an authorizer that refuses every other Jupyter API."""

from __future__ import annotations

import os
import sys

from ..deferred_imports import defer_iri_grammar


def platform_argv(extra: list[str] | None = None) -> list[str]:
    argv = [
        "--ServerApp.jpserver_extensions=aitip=True",
        "--ServerApp.authorizer_class=aitip.server.authorizer.PlatformAuthorizer",
        "--ServerApp.allow_unauthenticated_access=False",
        "--ServerApp.default_url=/home",
        "--ServerApp.root_dir=" + os.getcwd(),
    ]
    if os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    return argv + (extra or [])


def main(argv: list[str] | None = None) -> None:
    os.umask(0o077)  # what the platform creates is its own (see aitip.isolation.state)
    os.environ["AITIP_MODE"] = "platform"
    # Only this extension: no user config, no JupyterLab, no terminals in the platform service.
    os.environ["JUPYTER_NO_CONFIG"] = "1"
    os.environ["JUPYTERHUB_SINGLEUSER_EXTENSION"] = "1"
    defer_iri_grammar()
    from jupyterhub.singleuser.extension import main as singleuser_main

    singleuser_main(argv=platform_argv(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
