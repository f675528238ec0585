"""The platform server fixtures of tests/server, and the digits data as a registered table and as an image folder."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from tests.server.conftest import (  # noqa: F401 - fixtures
    aitip_kernelspecs, api, initialized_registry, jp_server_config, made_tracking_store, migrated_catalog, tracking_uri)

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


IMAGE_TRAINING = Path(__file__).resolve().parents[2] / "notebooks" / "train" / "digits_images.ipynb"


def digits_split() -> tuple[list[int], list[int]]:
    """The digits' indices in the train and test splits (stratified, 25 % test), the same for the table and the
    images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    train, test = train_test_split(list(range(len(target))), test_size=0.25, random_state=0, stratify=target)
    return sorted(train), sorted(test)


def digits_image_zip(size: int = 16, *, split_file: bool = True) -> tuple[bytes, list[str]]:
    """scikit-learn's digits as an image folder (a zip of class folders ``<digit>/<index>.png``, 8x8 scaled to
    ``size`` x ``size`` grayscale PNGs) whose split is declared by the file list ``splits.csv`` (``path,split``)
    at its top (``split_file``); with the test files' paths."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    train, test = digits_split()
    split_of = {**{index: "train" for index in train}, **{index: "test" for index in test}}
    scale = size // 8
    sink = io.BytesIO()
    lines = ["path,split"]
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            grey = np.kron(pixels * (255 / 16), np.ones((scale, scale))).round().astype(np.uint8)
            png = io.BytesIO()
            Image.fromarray(grey, mode="L").save(png, format="PNG")
            path = f"{label}/{index:04d}.png"
            archive.writestr(path, png.getvalue())
            lines.append(f"{path},{split_of[index]}")
        if split_file:
            archive.writestr("splits.csv", "\n".join(lines) + "\n")
    return sink.getvalue(), [line.split(",")[0] for line in lines[1:] if line.endswith(",test")]


def image_training_notebook() -> dict[str, Any]:
    return json.loads(IMAGE_TRAINING.read_text())


async def wait_job(call: Any, job_id: int, timeout: float = 300) -> dict[str, Any]:
    """The job once it has ended, read through the API (``call``: the ``api`` fixture)."""
    for _ in range(int(timeout / 0.2)):
        status, job = await call("GET", f"jobs/{job_id}")
        assert status == 200, job
        if job["state"] in ("succeeded", "failed", "cancelled", "timed_out"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {job}")
