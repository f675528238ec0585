"""``check_quality`` in a child process forked from a fork server that has the readers imported, for
callers that must survive any file: a crash in native code takes down the child only."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from ..tabular import DatasetFormatError
from .gate import GateResult, check_quality
from .models import ImageFolderReport, QualityReport, QualityRules


def check_quality_isolated(path: str | os.PathLike[str], fmt: str,
                           rules: QualityRules | dict[str, Any] | None = None, *, timeout_s: float = 1800,
                           _worker: Any = None, **options: Any) -> tuple[QualityReport | ImageFolderReport, GateResult]:
    """``check_quality`` in a fresh child process, for callers that must survive any file.

    DuckDB and Pillow are native code fed untrusted bytes: a file that crashes them (see the
    ``disabled_optimizers`` note) takes down the child only, and is reported as a DatasetFormatError.
    A child still working after ``timeout_s`` is killed (TimeoutError). Forked from a fork server that has the readers imported (``_checker_context``).
    """
    rules = rules if isinstance(rules, QualityRules) else QualityRules.model_validate(rules or {})
    context = _checker_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker or _isolated_check, daemon=True,
                              args=(sender, str(path), fmt, rules.model_dump_json(), options))
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise TimeoutError(f"the quality check of {Path(path).name!r} took longer than {timeout_s:g} s")
        outcome = receiver.recv()
    except EOFError:
        process.join(10)
        raise DatasetFormatError("reading the {fmt} file crashed the reader (exit code {exitcode}); the file is "
                                 "corrupt or crafted", detail={"format": fmt},
                                 fmt=fmt, exitcode=process.exitcode) from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(10)
    status, first, second = outcome
    if status == "format_error":  # the template and its values, so the caller reads it in their language
        raise DatasetFormatError(first.template, detail=second, **first.values)
    if status != "ok":
        raise RuntimeError(f"the quality check failed in its child process: {first}")
    model = ImageFolderReport if json.loads(first)["kind"] == "image_folder" else QualityReport
    return model.model_validate_json(first), GateResult.model_validate_json(second)


# Imported once by the checks' fork server, so a check's child starts without importing them again.
CHECKER_PRELOAD = ["aitip.datasets.quality", "duckdb", "numpy", "pyarrow", "pyarrow.parquet", "pyarrow.csv", "PIL.Image"]


def _checker_context() -> Any:
    """Children forked from multiprocessing's fork server, which imported DuckDB, PyArrow and Pillow once:
    each check still runs in a fresh process, started far sooner than a spawned interpreter (which imports
    them again, and in the platform service its main module too).

    A fork server must hold no threads: Arrow's jemalloc starts a background thread at import unless
    told not to, so the variable is set before the server starts (it only concerns Arrow's allocator)."""
    import multiprocessing
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    main = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    # A child re-runs its parent's main module by name; preloaded, that costs only the module's own body.
    preload = CHECKER_PRELOAD + ([main] if main and not main.endswith("__main__") else [])
    with _CHECKER_LOCK:
        os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
        context.set_forkserver_preload(preload)
        forkserver.ensure_running()
    return context


_CHECKER_LOCK = threading.Lock()


def _isolated_check(sender: Any, path: str, fmt: str, rules_json: str, options: dict[str, Any]) -> None:
    try:
        report, gate = check_quality(path, fmt, QualityRules.model_validate_json(rules_json), **options)
        sender.send(("ok", report.model_dump_json(), gate.model_dump_json()))
    except DatasetFormatError as error:
        sender.send(("format_error", error.phrase, error.detail))
    except BaseException as error:  # noqa: BLE001 - everything else is reported to the parent as it is
        sender.send(("error", f"{type(error).__name__}: {error}", None))
    finally:
        sender.close()
