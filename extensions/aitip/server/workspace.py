"""Entry point of a user's server on this machine: ``jupyterhub-singleuser``, with the work its imports would
do for checks it seldom makes left until they are made (:mod:`aitip.deferred_imports`)."""

from __future__ import annotations

from ..deferred_imports import defer_iri_grammar


def main() -> None:
    defer_iri_grammar()
    from jupyterhub.singleuser import main as singleuser_main

    singleuser_main()


if __name__ == "__main__":
    main()
