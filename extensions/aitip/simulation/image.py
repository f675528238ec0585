"""The image conditions of a template run against a loaded classifier, on flat rows of raw pixel values.

Corruptions are numpy over the whole batch at once (occlusion: every position of the patch in a few large
predict calls), attacks go through ART (:mod:`.attacks`). Values are fractions of the pixel range unless the
registry says otherwise; the result is what :func:`aitip.simulation.results.publish` takes."""

from __future__ import annotations

import base64
import io
import math
import platform
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np

from ..errors import InvalidInput
from . import attacks
from .conditions import REGISTRY
from .templates import Template

Progress = Callable[[str, "float | None", int, int], None]
# Rows x pixels an occlusion batch holds at most (float64: 8 bytes each): bounds memory on large images.
OCCLUSION_BATCH_ELEMENTS = 4_000_000
GALLERY_MIN_PIXELS = 64
CORRUPTIONS = ("gaussian_noise", "blur", "brightness", "contrast", "jpeg", "occlusion")


def image_shape_of(n_features: int, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """(channels, height, width) of a flat row: the template's shape, else a square of one channel."""
    if image_shape:
        shape = tuple(int(side) for side in image_shape)
        shape = shape if len(shape) == 3 else (1, *shape)
    else:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"{n_features} pixel columns are no square image: give input.image_shape")
        shape = (1, side, side)
    if math.prod(shape) != n_features:
        raise ValueError(f"input.image_shape {list(image_shape or [])} holds {math.prod(shape)} pixels, but the rows "
                         f"have {n_features} columns")
    return shape  # type: ignore[return-value]


def pixel_range_of(x: np.ndarray, pixel_range: Sequence[float] | None) -> tuple[float, float]:
    """The template's range, else [0, the data's maximum rounded up to 1, 16 or 255]."""
    if pixel_range:
        return float(pixel_range[0]), float(pixel_range[1])
    top = float(np.max(x)) if x.size else 1.0
    return 0.0, next((bound for bound in (1.0, 16.0, 255.0) if top <= bound), float(math.ceil(top)))


# ----- corruptions: (n, features) in, (n, features) out, clipped to the pixel range -----

def gaussian_noise(x: np.ndarray, sigma: float, clip: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    span = clip[1] - clip[0]
    return np.clip(x + rng.normal(0.0, sigma * span, x.shape), *clip)


def blur(x: np.ndarray, sigma: float, shape: tuple[int, int, int]) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    images = x.reshape((len(x), *shape))
    return gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="nearest").reshape(x.shape)


def brightness(x: np.ndarray, delta: float, clip: tuple[float, float]) -> np.ndarray:
    return np.clip(x + delta * (clip[1] - clip[0]), *clip)


def contrast(x: np.ndarray, factor: float, clip: tuple[float, float]) -> np.ndarray:
    """Each image's distance from its own mean scaled, as Pillow's ImageEnhance.Contrast does."""
    mean = x.mean(axis=1, keepdims=True)
    return np.clip(mean + factor * (x - mean), *clip)


def _to_bytes(images: np.ndarray, clip: tuple[float, float]) -> np.ndarray:
    return np.round((np.clip(images, *clip) - clip[0]) / (clip[1] - clip[0]) * 255).astype(np.uint8)


def jpeg(x: np.ndarray, quality: int, shape: tuple[int, int, int], clip: tuple[float, float]) -> np.ndarray:
    """Each image saved as a JPEG of ``quality`` with Pillow and read back into the pixel range."""
    from PIL import Image

    channels = shape[0]
    images = _to_bytes(x.reshape((len(x), *shape)), clip)
    out = np.empty(images.shape, dtype=np.float64)
    for index, image in enumerate(images):
        planes = [image.transpose(1, 2, 0)] if channels == 3 else list(image)
        decoded = []
        for plane in planes:
            buffer = io.BytesIO()
            Image.fromarray(plane, "RGB" if plane.ndim == 3 else "L").save(buffer, format="JPEG", quality=int(quality))
            buffer.seek(0)
            with Image.open(buffer) as read:
                decoded.append(np.asarray(read, dtype=np.float64))
        out[index] = decoded[0].transpose(2, 0, 1) if channels == 3 else np.stack(decoded)
    return (out / 255.0 * (clip[1] - clip[0]) + clip[0]).reshape(x.shape)


def occlusion(target: attacks.Classifier, x: np.ndarray, y: np.ndarray, size: int, shape: tuple[int, int, int],
              low: float) -> tuple[float, np.ndarray, np.ndarray, dict[str, Any]]:
    """A ``size`` square of the low value at every position; the worst position's accuracy, occluded rows and
    predictions, and where it was."""
    channels, height, width = shape
    size_h, size_w = min(size, height), min(size, width)
    positions = [(row, col) for row in range(height - size_h + 1) for col in range(width - size_w + 1)]
    images = x.reshape((len(x), channels, height, width))
    per_batch = max(1, OCCLUSION_BATCH_ELEMENTS // max(1, x.size))
    worst = (math.inf, (0, 0), None)
    for start in range(0, len(positions), per_batch):
        chunk = positions[start:start + per_batch]
        batch = np.broadcast_to(images, (len(chunk), *images.shape)).copy()
        for offset, (row, col) in enumerate(chunk):
            batch[offset, :, :, row:row + size_h, col:col + size_w] = low
        predicted = target.predict_index(batch.reshape(len(chunk) * len(x), -1)).reshape(len(chunk), len(x))
        accuracy = (predicted == y[None, :]).mean(axis=1)
        best = int(np.argmin(accuracy))
        if accuracy[best] < worst[0]:
            worst = (float(accuracy[best]), chunk[best], (batch[best].reshape(x.shape), predicted[best]))
    occluded, predicted = worst[2]
    details = {"position": [int(worst[1][0]), int(worst[1][1])], "positions": len(positions)}
    return worst[0], occluded, predicted, details


# ----- the gallery -----

def png_base64(row: np.ndarray, shape: tuple[int, int, int], clip: tuple[float, float]) -> str:
    """One image as a base64 PNG, upscaled (nearest) so that its shorter side is at least 64 pixels."""
    from PIL import Image

    image = _to_bytes(row.reshape(shape), clip)
    picture = Image.fromarray(image.transpose(1, 2, 0), "RGB") if shape[0] == 3 else Image.fromarray(image[0], "L")
    scale = max(1, math.ceil(GALLERY_MIN_PIXELS / min(shape[1], shape[2])))
    picture = picture.resize((shape[2] * scale, shape[1] * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _candidates(y: np.ndarray, clean: np.ndarray, predicted: np.ndarray, limit: int) -> list[int]:
    """Rows worth showing, best first: flipped by the condition, then wrong anyway, then the rest."""
    flipped = np.flatnonzero((clean == y) & (predicted != y))
    wrong = np.flatnonzero((clean != y) & (predicted != y))
    rest = np.flatnonzero(predicted == y)
    return [int(index) for index in np.concatenate([flipped, wrong, rest])[:limit]]


def gallery(shown: list[list[dict[str, Any]]], size: int) -> list[dict[str, Any]]:
    """At most ``size`` of the candidates (a list per condition and value, best first): the misclassified
    first, and among them one per condition and value before any second one, the adversarial attacks' before
    the corruptions' (a gallery of adversarial examples is what a reader looks for)."""
    ranked = sorted(((depth, order, example) for order, candidates in enumerate(shown)
                     for depth, example in enumerate(candidates)),
                    key=lambda item: (item[0], item[2]["condition"] not in attacks.ATTACKS, item[1]))
    wrong = [example for _, _, example in ranked if example["prediction"] != example["label"]]
    right = [example for _, _, example in ranked if example["prediction"] == example["label"]]
    return (wrong + right)[:max(0, size)]


def environment(extra: Sequence[str] = ()) -> dict[str, str]:
    """The versions that decide the numbers, for the record."""
    found = {"python": platform.python_version()}
    for name, distribution in (("art", "adversarial-robustness-toolbox"), ("sklearn", "scikit-learn"),
                               ("numpy", "numpy"), ("scipy", "scipy"), ("pillow", "pillow"), *[(e, e) for e in extra]):
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return found


# ----- the run -----

def _perturb(name: str, value: float, x: np.ndarray, *, shape: tuple[int, int, int], clip: tuple[float, float],
             rng: np.random.Generator) -> np.ndarray:
    if name == "gaussian_noise":
        return gaussian_noise(x, value, clip, rng)
    if name == "blur":
        return blur(x, value, shape)
    if name == "brightness":
        return brightness(x, value, clip)
    if name == "contrast":
        return contrast(x, value, clip)
    if name == "jpeg":
        return jpeg(x, int(value), shape, clip)
    raise ValueError(f"{name} is not an image corruption")


def simulate_images(template: Template, model: Any, x: np.ndarray, y: Sequence[Any], *,
                    classes: Sequence[Any] | None = None, gallery_size: int = 12,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Every condition of an image template on ``x`` (n rows of raw pixels) with true labels ``y``: the
    result to publish. A condition that fails is recorded in ``errors`` and the others still run; a gradient
    attack on a model without gradients raises InvalidInput (``gradients_required``) before anything runs."""
    if template.kind != "image":
        raise InvalidInput("a {kind} template is not run on images", code="invalid_template",
                           kind=template.kind)
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    shape = image_shape_of(x.shape[1], template.input.image_shape)
    clip = pixel_range_of(x, template.input.pixel_range)
    target = attacks.classifier(model, n_features=x.shape[1], image_shape=shape, classes=classes)
    if any(entry.condition in attacks.GRADIENT_ATTACKS for entry in template.conditions):
        attacks.gradient_estimator(target, clip)  # refuses now, not halfway through
    truth = target.indices(y)
    total = 1 + sum(len(entry.values) for entry in template.conditions)
    clean_predicted = target.predict_index(x)
    clean = float(np.mean(clean_predicted == truth))
    if progress:
        progress("clean", None, 1, total)
    labels = [str(target.classes[index]) if index >= 0 else str(label) for index, label in zip(truth, y)]
    rows: list[dict[str, Any]] = []
    shown: list[list[dict[str, Any]]] = []  # gallery candidates per condition and value, best first
    errors: list[str] = []
    skipped: list[float] = []  # values of failed conditions, counted as done for the progress

    def record(name: str, parameter: str, value: float, perturbed: np.ndarray, predicted: np.ndarray,
               seconds: float, details: dict[str, Any]) -> None:
        rows.append({"condition": name, "parameter": parameter, "value": value,
                     "metric": float(np.mean(predicted == truth)), "seconds": round(seconds, 6), "samples": len(x),
                     "details": details})
        shown.append([{"condition": name, "parameter": parameter, "value": value, "label": labels[index],
                       "clean_prediction": str(target.classes[clean_predicted[index]]),
                       "prediction": str(target.classes[predicted[index]]), "original": x[index],
                       "perturbed": perturbed[index]}
                      for index in _candidates(truth, clean_predicted, predicted, gallery_size)])
        if progress:
            progress(name, value, len(rows) + len(skipped) + 1, total)

    for entry in template.conditions:
        parameter = REGISTRY[entry.condition].parameter or "value"
        rng = np.random.default_rng(template.input.seed)
        recorded = len(rows)
        try:
            if entry.condition in attacks.ATTACKS:
                runs = attacks.run_attack(entry.condition, target, x, entry.values, entry.options, clip=clip,
                                          image_shape=shape, seed=template.input.seed)
                for value, adversarial, predicted, seconds, details in runs:
                    record(entry.condition, parameter, value, adversarial, predicted, seconds, details)
                continue
            for value in entry.values:
                began = time.perf_counter()
                if entry.condition == "occlusion":
                    _, perturbed, predicted, details = occlusion(target, x, truth, int(value), shape, clip[0])
                else:
                    perturbed = _perturb(entry.condition, value, x, shape=shape, clip=clip, rng=rng)
                    predicted, details = target.predict_index(perturbed), {}
                record(entry.condition, parameter, value, perturbed, predicted, time.perf_counter() - began, details)
        except InvalidInput:
            raise
        except Exception as error:  # noqa: BLE001 - one condition's failure is reported, the others still run
            errors.append(f"{entry.condition}: {type(error).__name__}: {error}")
            skipped += entry.values[len(rows) - recorded:]
    examples = [{key: value for key, value in example.items() if key not in ("original", "perturbed")}
                | {"original_png": png_base64(example["original"], shape, clip),
                   "perturbed_png": png_base64(example["perturbed"], shape, clip)}
                for example in gallery(shown, gallery_size)]
    return {"kind": "image", "metric": template.metric, "rows": len(x), "clean": clean, "conditions": rows,
            "examples": examples, "probes": [], "drift": [],
            "environment": environment(["torch"] if target.flavor == "torch" else []), "errors": errors}
