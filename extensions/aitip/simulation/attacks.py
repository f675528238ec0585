"""The adversarial conditions, run with IBM's Adversarial Robustness Toolbox (ART) on a loaded model.

A model reaches ART through :class:`Classifier`, which predicts on flat rows of raw pixels whatever the model
is (a scikit-learn estimator or pipeline, a PyTorch module, an MLflow pyfunc). Gradient attacks take the ART
estimator that has the model's loss gradients *in raw pixel space*: a Pipeline of StandardScaler/MinMaxScaler
steps and a LogisticRegression or SVC becomes ART's estimator of the final step with the scalers as its
``preprocessing``, so ε is a fraction of the pixel range the data is in. Black-box attacks see only
``predict_proba`` (or one-hot ``predict``)."""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInput
from . import conditions

GRADIENT_ATTACKS = tuple(condition.name for condition in conditions.CONDITIONS if condition.needs_gradients)
BLACK_BOX_ATTACKS = conditions.BLACK_BOX_CONDITIONS
ATTACKS = GRADIENT_ATTACKS + BLACK_BOX_ATTACKS
# Rows a PyTorch module is asked about at once when predicting outside ART.
TORCH_BATCH = 1024


@contextlib.contextmanager
def torch_hidden() -> Iterator[None]:
    """Within it, PyTorch reads as not installed unless the process has loaded it already: ART's package and
    skops (MLflow's scikit-learn format, which lists every estimator at import) import it whenever it is
    installed, about 2 s of a simulation's start, for nothing a scikit-learn model needs. ``sys.modules["torch"]
    = None`` is what makes both ``import torch`` and ``importlib.util.find_spec`` say so; SciPy's statistics,
    which look for torch in ``sys.modules`` at import, are imported first."""
    import scipy.stats  # noqa: F401

    hidden = "torch" not in sys.modules
    if hidden:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if hidden and "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


def import_art() -> None:
    """Imports ART once, quietly, and without PyTorch (:func:`torch_hidden`) unless a PyTorch model loaded it."""
    if "art.attacks.evasion" in sys.modules:
        return
    with torch_hidden(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "PyTorch not found", "TensorFlow not found"
        import art.attacks.evasion  # noqa: F401
        import art.estimators.classification  # noqa: F401


def gradients_required(reason: str) -> InvalidInput:
    return conditions.gradients_required(GRADIENT_ATTACKS, reason)


def _is_torch_module(model: Any) -> bool:
    return any(cls.__module__.startswith("torch.nn") and cls.__name__ == "Module" for cls in type(model).__mro__)


@dataclass
class Classifier:
    """A loaded model seen as a classifier of flat pixel rows, with its classes in the model's order."""

    model: Any
    classes: list[Any]
    flavor: str  # "sklearn", "torch" or "pyfunc"
    input_shape: tuple[int, ...]  # what the model takes per row (flat, or channels-first for a CNN)

    @property
    def nb_classes(self) -> int:
        return len(self.classes)

    def to_model_input(self, x: np.ndarray) -> np.ndarray:
        return x.reshape((len(x), *self.input_shape))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class scores [n, classes] for flat rows: probabilities where the model has them, else one-hot."""
        x = np.asarray(x).reshape(len(x), -1)
        if self.flavor == "torch":
            import torch

            outputs = []
            with torch.no_grad():
                for start in range(0, len(x), TORCH_BATCH):
                    batch = torch.from_numpy(self.to_model_input(x[start:start + TORCH_BATCH]).astype(np.float32))
                    outputs.append(torch.softmax(self.model(batch), dim=1).numpy())
            return np.concatenate(outputs) if outputs else np.zeros((0, self.nb_classes))
        if self.flavor == "sklearn" and hasattr(self.model, "predict_proba"):
            return np.asarray(self.model.predict_proba(x))
        return self._one_hot(self.model.predict(x))

    def predict_index(self, x: np.ndarray) -> np.ndarray:
        """Each row's predicted class, as an index into :attr:`classes`."""
        if self.flavor == "sklearn":
            return self.indices(self.model.predict(np.asarray(x).reshape(len(x), -1)))
        if self.flavor == "pyfunc":
            return self.indices(self.model.predict(np.asarray(x).reshape(len(x), -1)))
        return np.argmax(self.predict_proba(x), axis=1)

    def indices(self, labels: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Labels as indices into :attr:`classes` (-1 for a label the model does not know: always wrong)."""
        labels = np.asarray(labels).ravel()
        classes = np.asarray(self.classes)
        if classes.dtype.kind in "iuf" and labels.dtype.kind in "iuf" and len(classes):
            order = np.argsort(classes, kind="stable")
            ordered = classes[order]
            found = np.clip(np.searchsorted(ordered, labels), 0, len(ordered) - 1)
            return np.where(ordered[found] == labels, order[found], -1).astype(np.int64)
        position = {label: index for index, label in enumerate(self.classes)}
        by_text = {str(label): index for index, label in enumerate(self.classes)}
        return np.array([position[label] if label in position else by_text.get(str(label), -1) for label in labels],
                        dtype=np.int64)

    def _one_hot(self, predicted: Any) -> np.ndarray:
        predicted = np.asarray(predicted)
        if predicted.ndim == 2 and predicted.shape[1] == self.nb_classes:
            return predicted.astype(np.float64)
        scores = np.zeros((len(predicted), self.nb_classes))
        found = self.indices(predicted)
        scores[np.flatnonzero(found >= 0), found[found >= 0]] = 1.0
        return scores


def _torch_input_shape(model: Any, n_features: int, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """What a PyTorch module takes per row: the flat pixels if it accepts them, else the channels-first image."""
    import torch

    candidates = [(n_features,), image_shape if len(image_shape) == 3 else (1, *image_shape)]
    problems = []
    for shape in candidates:
        try:
            with torch.no_grad():
                model(torch.zeros((2, *shape), dtype=torch.float32))
            return tuple(shape)
        except Exception as error:  # noqa: BLE001 - a module that refuses a shape raises anything
            problems.append(f"{shape}: {error}")
    raise ValueError(f"the PyTorch model takes neither flat rows nor images: {'; '.join(problems)}")


def classifier(model: Any, *, n_features: int, image_shape: tuple[int, ...],
               classes: Sequence[Any] | None = None) -> Classifier:
    """The model as a :class:`Classifier`. ``classes`` names a PyTorch module's outputs (default 0..k-1)."""
    if _is_torch_module(model):
        model.eval()
        shape = _torch_input_shape(model, n_features, image_shape)
        import torch

        with torch.no_grad():
            outputs = model(torch.zeros((1, *shape), dtype=torch.float32)).shape[-1]
        names = list(classes) if classes is not None else list(range(outputs))
        if len(names) != outputs:
            raise ValueError(f"the model has {outputs} outputs but {len(names)} classes were named")
        return Classifier(model, names, "torch", shape)
    if hasattr(model, "classes_") and hasattr(model, "predict"):
        return Classifier(model, list(model.classes_), "sklearn", (n_features,))
    if hasattr(model, "predict"):
        if classes is None:
            raise ValueError("a model without classes_ (an MLflow pyfunc) needs its classes named")
        return Classifier(model, list(classes), "pyfunc", (n_features,))
    raise ValueError(f"{type(model).__name__} has no predict: it is not a classifier")


def _affine_of_scalers(steps: Sequence[Any], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The scalers before the final step as one ``(x - mean) / std``, ART's ``preprocessing``."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    mean, std = np.zeros(n_features), np.ones(n_features)
    for step in steps:
        if isinstance(step, StandardScaler):
            step_mean = step.mean_ if step.mean_ is not None else np.zeros(n_features)
            step_std = step.scale_ if step.scale_ is not None else np.ones(n_features)
        elif isinstance(step, MinMaxScaler) and not step.clip:
            step_mean, step_std = -step.min_ / step.scale_, 1.0 / step.scale_
        else:
            raise gradients_required(f"{type(step).__name__} is not a scaling ART can differentiate through "
                                     "(only StandardScaler and MinMaxScaler may come before the classifier)")
        mean, std = mean + std * step_mean, std * step_std
    return mean, std


def gradient_estimator(target: Classifier, clip: tuple[float, float]) -> Any:
    """ART's estimator with loss gradients in raw pixel space; 422 ``gradients_required`` when there is none."""
    import_art()
    if target.flavor == "torch":
        import torch
        from art.estimators.classification import PyTorchClassifier

        return PyTorchClassifier(target.model, loss=torch.nn.CrossEntropyLoss(), input_shape=target.input_shape,
                                 nb_classes=target.nb_classes, clip_values=clip)
    if target.flavor != "sklearn":
        raise gradients_required("an MLflow python function model gives predictions only")
    from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression, ScikitlearnSVC
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC, LinearSVC

    steps = [step for _, step in target.model.steps if step not in (None, "passthrough")] \
        if isinstance(target.model, Pipeline) else [target.model]
    final = steps[-1]
    if isinstance(final, LogisticRegression):
        art_class = ScikitlearnLogisticRegression
    elif isinstance(final, SVC | LinearSVC) and getattr(final, "kernel", "linear") != "precomputed":
        art_class = ScikitlearnSVC
    else:
        raise gradients_required(f"{type(final).__name__} has no loss gradients in ART")
    n_features = int(np.prod(target.input_shape))
    mean, std = _affine_of_scalers(steps[:-1], n_features)
    if not steps[:-1]:
        return art_class(final, clip_values=clip)
    if art_class is ScikitlearnLogisticRegression:
        # ART 1.20.1's loss_gradient of a logistic regression predicts on the already preprocessed input through
        # its own predict, which preprocesses it again: the scalers are folded into the weights instead.
        return art_class(_folded(final, mean, std), clip_values=clip)
    return art_class(final, clip_values=clip, preprocessing=(mean, std))


def _folded(model: Any, mean: np.ndarray, std: np.ndarray) -> Any:
    """A copy of a linear model that takes raw inputs: ``w . (x - mean) / std + b`` as ``w' . x + b'``."""
    import copy

    folded = copy.deepcopy(model)
    folded.coef_ = model.coef_ / std
    folded.intercept_ = model.intercept_ - (model.coef_ * (mean / std)).sum(axis=1)
    return folded


def black_box_estimator(target: Classifier, clip: tuple[float, float], image_shape: tuple[int, int, int]) -> Any:
    """ART's black-box classifier over the model's scores: attacks see predictions, nothing else (its
    neural-network variant, which SquareAttack requires; it has no gradients either)."""
    import_art()
    from art.estimators.classification.blackbox import BlackBoxClassifierNeuralNetwork

    def scores(images: np.ndarray) -> np.ndarray:
        return target.predict_proba(images.reshape(len(images), -1))

    return BlackBoxClassifierNeuralNetwork(scores, input_shape=tuple(image_shape), nb_classes=target.nb_classes,
                                           clip_values=clip, channels_first=True)


def _flat(estimator: Any, target: Classifier, x: np.ndarray) -> np.ndarray:
    """Rows in the shape and type the estimator was built for (a CNN's images; float32 for PyTorch)."""
    rows = x if estimator.input_shape == (x.shape[1],) else target.to_model_input(x)
    return rows.astype(np.float32) if target.flavor == "torch" else rows


def fgsm(estimator: Any, target: Classifier, x: np.ndarray, eps: float) -> np.ndarray:
    """ART's FastGradientMethod, L-inf, ``eps`` in pixel units; labels: the model's own predictions."""
    from art.attacks.evasion import FastGradientMethod

    attack = FastGradientMethod(estimator, norm=np.inf, eps=eps)
    return attack.generate(_flat(estimator, target, x)).reshape(x.shape).astype(np.float64)


def pgd(estimator: Any, target: Classifier, x: np.ndarray, eps: float, *, max_iter: int,
        eps_step: float) -> np.ndarray:
    """ART's ProjectedGradientDescent, L-inf, no random start (deterministic, as the benchmark's ART call)."""
    from art.attacks.evasion import ProjectedGradientDescent

    attack = ProjectedGradientDescent(estimator, norm=np.inf, eps=eps, eps_step=eps_step, max_iter=max_iter,
                                      num_random_init=0, verbose=False)
    return attack.generate(_flat(estimator, target, x)).reshape(x.shape).astype(np.float64)


def square(estimator: Any, x: np.ndarray, eps: float, *, max_iter: int, seed: int) -> np.ndarray:
    """ART's SquareAttack (L-inf) on the black-box estimator; seeded, it draws its squares with numpy."""
    from art.attacks.evasion import SquareAttack

    np.random.seed(seed)
    images = x.reshape((len(x), *estimator.input_shape))
    return SquareAttack(estimator, norm=np.inf, eps=eps, max_iter=max_iter, verbose=False).generate(images).reshape(
        x.shape)


def starting_points(target: Classifier, x: np.ndarray, clip: tuple[float, float], seed: int,
                    tries: int = 100, steps: int = 10) -> np.ndarray:
    """For each row, a seeded random image the model classifies otherwise, pulled towards the row while it stays
    so (bisection on the line between them, as HopSkipJump's own start): HopSkipJump draws its start from an
    unseeded generator, so a run given these is repeatable. A row without one keeps itself (HopSkipJump then
    searches on its own)."""
    rng = np.random.default_rng(seed)
    clean = target.predict_index(x)
    start = x.copy()
    pending = np.arange(len(x))
    per_draw = max(1, min(tries, 4_000_000 // max(1, x.size)))
    for _ in range(0, tries, per_draw):
        if not len(pending):
            break
        draws = rng.uniform(clip[0], clip[1], (len(pending), per_draw, x.shape[1]))
        predicted = target.predict_index(draws.reshape(-1, x.shape[1])).reshape(len(pending), per_draw)
        hit = predicted != clean[pending, None]
        found = hit.any(axis=1)
        start[pending[found]] = draws[found, hit[found].argmax(axis=1)]
        pending = pending[~found]
    moved = np.flatnonzero(np.any(start != x, axis=1))
    low, high = np.zeros(len(moved)), np.ones(len(moved))
    for _ in range(steps):
        middle = (low + high) / 2
        blended = x[moved] + middle[:, None] * (start[moved] - x[moved])
        still = target.predict_index(blended) != clean[moved]
        high, low = np.where(still, middle, high), np.where(still, low, middle)
    start[moved] = x[moved] + high[:, None] * (start[moved] - x[moved])
    return start


def hopskipjump(estimator: Any, x: np.ndarray, start: np.ndarray, *, max_iter: int, max_eval: int,
                seed: int) -> np.ndarray:
    """ART's HopSkipJump (L-inf) from predicted labels, from seeded starting points: the smallest adversarial it
    finds per row, whatever ε (a row it cannot break comes back unchanged); ε is applied to its distances after."""
    from art.attacks.evasion import HopSkipJump

    np.random.seed(seed)  # its gradient estimates draw from numpy's global generator
    attack = HopSkipJump(estimator, targeted=False, norm=np.inf, max_iter=max_iter, max_eval=max_eval,
                         init_eval=min(100, max_eval), verbose=False)
    shape = (len(x), *estimator.input_shape)
    return attack.generate(x.reshape(shape).astype(np.float32),
                           x_adv_init=start.reshape(shape).astype(np.float32)).reshape(x.shape).astype(np.float64)


def run_attack(name: str, target: Classifier, x: np.ndarray, eps_values: Sequence[float], options: dict[str, Any],
               *, clip: tuple[float, float], image_shape: tuple[int, int, int], seed: int) -> list[tuple[float, np.ndarray, np.ndarray, float, dict]]:
    """One attack over its ε grid: (ε, adversarial rows, the rows counted correct, seconds, details) per ε.
    ε values are fractions of the pixel range; a row is correct when the model still gives its true class."""
    span = clip[1] - clip[0]
    results = []
    if name in GRADIENT_ATTACKS:
        estimator = gradient_estimator(target, clip)
        for eps in eps_values:
            started = time.perf_counter()
            if name == "fgsm":
                adversarial = fgsm(estimator, target, x, eps * span)
            else:
                step = options.get("eps_step") or eps / 4
                adversarial = pgd(estimator, target, x, eps * span, max_iter=int(options.get("max_iter", 10)),
                                  eps_step=step * span)
            predicted = target.predict_index(adversarial)
            results.append((eps, adversarial, predicted, time.perf_counter() - started, {}))
        return results
    estimator = black_box_estimator(target, clip, image_shape)
    if name == "square":
        for eps in eps_values:
            started = time.perf_counter()
            adversarial = square(estimator, x, eps * span, max_iter=int(options.get("max_iter", 100)), seed=seed)
            predicted = target.predict_index(adversarial)
            results.append((eps, adversarial, predicted, time.perf_counter() - started, {}))
        return results
    if name != "hopskipjump":
        raise ValueError(f"{name} is not an attack")
    started = time.perf_counter()
    clean = target.predict_index(x)
    found = hopskipjump(estimator, x, starting_points(target, x, clip, seed), max_iter=int(options.get("max_iter", 10)),
                        max_eval=int(options.get("max_eval", 200)), seed=seed)
    moved = target.predict_index(found)
    distance = np.abs(found - x).max(axis=1) / span
    seconds = (time.perf_counter() - started) / max(1, len(eps_values))
    broken_at_all = moved != clean
    for eps in eps_values:
        broken = broken_at_all & (distance <= eps + 1e-9)
        adversarial = np.where(broken[:, None], found, x)
        predicted = np.where(broken, moved, clean)
        details = {"median_distance": float(np.median(distance[broken_at_all])) if broken_at_all.any() else None,
                   "broken_at_any_distance": int(broken_at_all.sum()), "one_attack_for_every_eps": True}
        results.append((eps, adversarial, predicted, seconds, details))
    return results
