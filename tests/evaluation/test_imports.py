"""The evaluation library runs inside job kernels: importing it must stay cheap and pull in no web framework,
no catalog, no MLflow and no scikit-learn (those are imported inside the functions that need them)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_library_pulls_in_no_web_framework_catalog_mlflow_or_sklearn():
    code = ("import sys, aitip.evaluation.metrics, aitip.evaluation.gates, aitip.evaluation.profiling\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'mlflow', 'tornado', 'panel', "
            "'pandas', 'scipy', 'sqlalchemy'}), 'aitip.catalog' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["[]", "False"]
