"""`papermill --engine aitip` runs a notebook with the platform's execution code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.support.notebooks import notebook


def _papermill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "papermill"), *args], capture_output=True, text=True,
                          timeout=120)


def test_the_engine_is_registered_under_the_papermill_entry_point() -> None:
    from papermill.engines import papermill_engines

    from aitip.jobs.papermill_engine import AitipEngine

    assert papermill_engines.get_engine("aitip") is AitipEngine


def test_papermill_cli_runs_a_notebook_on_the_aitip_engine(tmp_path: Path) -> None:
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nbformat.from_dict(notebook("import os\nprint(x * 3, os.getcwd())", parameters="x = 1")), source)
    done = _papermill(str(source), str(output), "--engine", "aitip", "-p", "x", "14", "-k", "aitip-python",
                      "--cwd", str(tmp_path))
    assert done.returncode == 0, done.stderr
    executed = json.loads(output.read_text())
    assert "".join(executed["cells"][-1]["outputs"][0]["text"]) == f"42 {tmp_path}\n"
    assert executed["cells"][-1]["metadata"]["papermill"]["status"] == "completed"
    assert executed["metadata"]["papermill"]["parameters"] == {"x": 14}


def test_a_failing_notebook_fails_the_papermill_run(tmp_path: Path) -> None:
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nbformat.from_dict(notebook("1 / 0")), source)
    done = _papermill(str(source), str(output), "--engine", "aitip", "-k", "aitip-python")
    assert done.returncode != 0 and "ZeroDivisionError" in done.stderr
    executed = json.loads(output.read_text())
    assert executed["cells"][-1]["metadata"]["papermill"]["exception"] is True


@pytest.mark.parametrize("bad", ["x = [", "import os\nos._exit(3)"])
def test_errors_are_reported_not_hung(tmp_path: Path, bad: str) -> None:
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nbformat.from_dict(notebook(bad)), source)
    done = _papermill(str(source), str(output), "--engine", "aitip", "-k", "aitip-python")
    assert done.returncode != 0
