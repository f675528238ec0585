"""The platform server fixtures of tests/server, and the digits data as a registered table."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from tests.server.conftest import aitip_kernelspecs, api, jp_server_config  # noqa: F401 - fixtures

TRAINING = Path(__file__).resolve().parents[2] / "notebooks" / "train" / "digits_sklearn.ipynb"


def digits_csv() -> bytes:
    """scikit-learn's digits as a table: 64 pixel columns, the label, and a stratified train/test split."""
    import pandas
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    frame = pandas.DataFrame(digits.data.astype(int), columns=[f"p{i}" for i in range(64)])
    frame["label"] = digits.target
    train, _ = train_test_split(frame.index, test_size=0.25, random_state=0, stratify=digits.target)
    frame["split"] = "test"
    frame.loc[train, "split"] = "train"
    sink = io.StringIO()
    frame.to_csv(sink, index=False)
    return sink.getvalue().encode()


def training_notebook() -> dict[str, Any]:
    return json.loads(TRAINING.read_text())
