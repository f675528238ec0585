"""What a simulation notebook reads, inside its sandbox: the model version the platform staged for it (its
``model_path`` parameter is ``models:/<name>/<version>``, found in ``$AITIP_MODELS``), or a local directory."""

from __future__ import annotations

import json
import os
from pathlib import Path


def staged_model(model_path: str) -> str:
    """The local directory of the MLflow model ``model_path`` names."""
    if not model_path.startswith("models:/"):
        return model_path
    staged = json.loads(os.environ.get("AITIP_MODELS") or "{}")
    key = model_path.removeprefix("models:/")
    if key not in staged:
        raise FileNotFoundError(f"{model_path} was not staged for this job (staged: {', '.join(staged) or 'none'})")
    return str(Path(staged[key]))
