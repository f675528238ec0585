"""The image conditions on scikit-learn's digits (LogisticRegression, the 360 stratified test images in [0, 1]),
against ART called directly: FGSM and PGD give ART's accuracies, Square and HopSkipJump too on a sample; the
gradients of a scaled pipeline are taken in raw pixel space; every corruption changes the images and moves the
accuracy the expected way; the worst occlusion is the worst of every position; the gallery and the result's
shape are what the platform reads."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from aitip.errors import InvalidInput
from aitip.simulation import image
from aitip.simulation.attacks import classifier, gradient_estimator, import_art, starting_points
from aitip.simulation.image import image_shape_of, pixel_range_of, simulate_images
from aitip.simulation.results import PublishedResult
from aitip.simulation.templates import parse_template, shipped_templates
from aitip.simulation.verdicts import judge
from tests.simulation.test_tabular_conditions import run_notebook, save_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def art_without_torch():
    """ART's package imports PyTorch when it is installed; the test process must not load it (it crashed beside
    the server's threads in CI): ART is imported the engine's way before the tests import from it."""
    import_art()


def test_a_scikit_learn_model_and_art_load_without_pytorch(tmp_path):
    """In a child process, as the simulation notebook does: an MLflow model in skops (which lists every estimator,
    PyTorch's too, at import) and ART (whose package imports PyTorch) load without loading PyTorch."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    mlflow.sklearn.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), str(tmp_path / "model"),
                              pip_requirements=["scikit-learn"])
    script = ("import sys, mlflow.sklearn; from aitip.simulation.attacks import import_art, torch_hidden\n"
              "with torch_hidden():\n    model = mlflow.sklearn.load_model(sys.argv[1])\n"
              "import_art(); from art.attacks.evasion import FastGradientMethod\n"
              "from art.estimators.classification import BlackBoxClassifier\n"
              "print(type(model).__name__, 'torch' in sys.modules, 'art.attacks.evasion' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["LogisticRegression", "False", "True"]


@pytest.fixture(scope="module")
def digits():
    """The FIELD-NOTES setting: pixels / 16, a stratified 20 % test split (360 rows), LogisticRegression."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.2, random_state=0, stratify=y)
    return {"model": LogisticRegression(max_iter=1000).fit(x_train, y_train), "x": x_test, "y": y_test,
            "x_train": x_train, "y_train": y_train}


def template(*conditions, **input_spec):
    return parse_template({"name": "digits_test", "title": "Digits", "kind": "image", "metric": "accuracy",
                           "notebook": "image_robustness", "conditions": list(conditions), "input": input_spec})


def metrics(result):
    return {(row["condition"], row["value"]): row["metric"] for row in result["conditions"]}


def test_fgsm_and_pgd_match_art_called_directly(digits):
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression

    model, x, y = digits["model"], digits["x"], digits["y"]
    result = simulate_images(template({"condition": "fgsm", "values": [0.05, 0.1, 0.2]},
                                      {"condition": "pgd", "values": [0.05, 0.1, 0.2], "options": {"max_iter": 10}}),
                             model, x, y)
    estimator = ScikitlearnLogisticRegression(model, clip_values=(0.0, 1.0))
    found = metrics(result)
    for eps in (0.05, 0.1, 0.2):
        direct_fgsm = np.mean(model.predict(FastGradientMethod(estimator, eps=eps).generate(x)) == y)
        direct_pgd = np.mean(model.predict(ProjectedGradientDescent(
            estimator, eps=eps, eps_step=eps / 4, max_iter=10, verbose=False).generate(x)) == y)
        assert found["fgsm", eps] == pytest.approx(direct_fgsm, abs=0.01)
        assert found["pgd", eps] == pytest.approx(direct_pgd, abs=0.01)
    # The figures measured with ART 1.20.1 in FIELD-NOTES.
    assert result["clean"] == pytest.approx(0.967, abs=0.001)
    assert (found["fgsm", 0.1], found["pgd", 0.1]) == (pytest.approx(0.642, abs=0.001), pytest.approx(0.622, abs=0.001))
    assert found["pgd", 0.2] < found["pgd", 0.1] < found["pgd", 0.05] < result["clean"]
    assert all(row["samples"] == 360 and row["seconds"] > 0 for row in result["conditions"])


def test_a_scaled_pipeline_is_attacked_in_raw_pixel_space(digits):
    """A StandardScaler + LogisticRegression pipeline on raw pixels [0, 16]: ART's loss gradient is the
    pipeline's own (checked numerically, on raw pixels), and FGSM equals FGSM computed from that numerical
    gradient. (ART 1.20.1 would get it wrong with the scaler as its ``preprocessing``: its logistic regression
    preprocesses twice in loss_gradient; the engine folds the scaler into the weights.)"""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    raw_train, raw_test, labels = digits["x_train"] * 16, digits["x"][:80] * 16, digits["y"][:80]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(raw_train, digits["y_train"])
    target = classifier(pipeline, n_features=64, image_shape=(1, 8, 8))
    estimator = gradient_estimator(target, (0.0, 16.0))
    # The cross-entropy's gradient on raw pixels by central differences, every pixel of every row in one call.
    step, n = 1e-3, len(raw_test)
    shifted = np.repeat(raw_test[:, None, :], 128, axis=1)
    shifted[:, np.arange(64), np.arange(64)] += step
    shifted[:, 64 + np.arange(64), np.arange(64)] -= step
    probabilities = pipeline.predict_proba(shifted.reshape(-1, 64)).reshape(n, 128, 10)[np.arange(n), :, labels]
    numerical = (np.log(probabilities[:, 64:]) - np.log(probabilities[:, :64])) / (2 * step)
    analytic = estimator.loss_gradient(raw_test, np.eye(10)[labels])
    # ART's logistic-regression loss gradient is the cross-entropy's divided by the number of classes.
    assert np.allclose(analytic * 10, numerical, rtol=1e-3, atol=1e-7)
    independent = np.clip(raw_test + 0.1 * 16 * np.sign(numerical), 0, 16)
    ours = image.attacks.fgsm(estimator, target, raw_test, 0.1 * 16)
    # FGSM's labels are the model's predictions (ART's default): compared where they are the true ones, and
    # where the gradient is not ~0 (its sign is noise there).
    right = pipeline.predict(raw_test) == labels
    changed = (np.abs(numerical) > 1e-6) & right[:, None]
    assert changed.sum() > 2000
    assert np.allclose(ours[changed], independent[changed], atol=1e-5)
    assert np.abs(ours - raw_test).max() == pytest.approx(1.6) and ours.min() >= 0 and ours.max() <= 16
    result = simulate_images(template({"condition": "fgsm", "values": [0.1]}), pipeline, raw_test[right],
                             labels[right])
    assert result["conditions"][0]["metric"] == pytest.approx(np.mean(pipeline.predict(independent[right]) ==
                                                                      labels[right]), abs=0.02)
    assert result["conditions"][0]["metric"] < result["clean"] - 0.3


def test_gaussian_noise_and_occlusion_match_the_measured_figures(digits):
    model, x, y = digits["model"], digits["x"], digits["y"]
    result = simulate_images(template({"condition": "gaussian_noise", "values": [0.1, 0.2, 0.3]},
                                      {"condition": "occlusion", "values": [2]}), model, x, y)
    found = metrics(result)
    assert [found["gaussian_noise", sigma] for sigma in (0.1, 0.2, 0.3)] == \
        [pytest.approx(value, abs=0.01) for value in (0.961, 0.931, 0.867)]
    worst = min(np.mean(model.predict(np.where(mask, 0.0, x)) == y) for mask in (
        np.pad(np.ones((2, 2), bool), ((row, 6 - row), (col, 6 - col))).reshape(-1)
        for row in range(7) for col in range(7)))
    assert found["occlusion", 2] == pytest.approx(worst) == pytest.approx(0.611, abs=0.001)
    details = result["conditions"][-1]["details"]
    assert details["positions"] == 49 and len(details["position"]) == 2


@pytest.mark.parametrize("name, values", [
    ("gaussian_noise", [0.05, 0.5]), ("blur", [0.5, 2.0]), ("brightness", [0.3, 0.8]), ("contrast", [0.6, 0.2]),
    ("jpeg", [60, 5]), ("occlusion", [2, 5]),
])
def test_each_corruption_changes_the_images_and_lowers_accuracy_as_it_grows(digits, name, values):
    model, x, y = digits["model"], digits["x"], digits["y"]
    result = simulate_images(template({"condition": name, "values": values}), model, x, y)
    assert result["errors"] == []
    mild, strong = metrics(result)[name, values[0]], metrics(result)[name, values[1]]
    assert strong < mild <= result["clean"] + 0.01, (mild, strong)
    shape, clip, rng = (1, 8, 8), (0.0, 1.0), np.random.default_rng(0)
    for value in values:
        if name == "occlusion":
            continue
        changed = image._perturb(name, value, x, shape=shape, clip=clip, rng=rng)
        assert changed.shape == x.shape and np.abs(changed - x).mean() > 0.005, value
        assert changed.min() >= 0 and changed.max() <= 1


def test_corruptions_keep_images_in_range_and_do_what_they_say():
    x = np.tile(np.linspace(0, 16, 64), (3, 1))
    clip = (0.0, 16.0)
    brighter = image.brightness(x, 0.25, clip)
    assert np.allclose(brighter, np.clip(x + 4, 0, 16))
    flat = image.contrast(x, 0.0 + 1e-9, clip)
    assert np.allclose(flat, x.mean(axis=1, keepdims=True), atol=1e-6)
    blurred = image.blur(x, 1.0, (1, 8, 8))
    assert blurred.std() < x.std() and blurred.shape == x.shape
    compressed = image.jpeg(x, 10, (1, 8, 8), clip)
    assert compressed.shape == x.shape and not np.allclose(compressed, x) and compressed.max() <= 16
    colour = np.random.default_rng(0).random((2, 3 * 8 * 8))
    assert image.jpeg(colour, 90, (3, 8, 8), (0.0, 1.0)).shape == colour.shape


def test_square_and_hopskipjump_match_art_called_directly(digits):
    from art.attacks.evasion import HopSkipJump, SquareAttack
    from art.estimators.classification.blackbox import BlackBoxClassifierNeuralNetwork

    model, x, y = digits["model"], digits["x"][:40], digits["y"][:40]
    result = simulate_images(template({"condition": "square", "values": [0.1, 0.2], "options": {"max_iter": 20}},
                                      {"condition": "hopskipjump", "values": [0.05, 0.1, 0.3],
                                       "options": {"max_iter": 3, "max_eval": 50}}), model, x, y)
    found = metrics(result)
    estimator = BlackBoxClassifierNeuralNetwork(lambda images: model.predict_proba(images.reshape(len(images), -1)),
                                                input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    for eps in (0.1, 0.2):
        np.random.seed(0)
        adversarial = SquareAttack(estimator, norm=np.inf, eps=eps, max_iter=20, verbose=False).generate(
            x.reshape(-1, 1, 8, 8)).reshape(len(x), -1)
        assert found["square", eps] == pytest.approx(np.mean(model.predict(adversarial) == y), abs=0.01)
    # HopSkipJump draws its start from an unseeded generator: the engine gives it seeded ones, and so does this.
    start = starting_points(classifier(model, n_features=64, image_shape=(1, 8, 8)), x, (0.0, 1.0), seed=0)
    assert np.mean(model.predict(start) != model.predict(x)) > 0.9
    np.random.seed(0)
    adversarial = HopSkipJump(estimator, norm=np.inf, max_iter=3, max_eval=50, init_eval=50, verbose=False).generate(
        x.reshape(-1, 1, 8, 8).astype(np.float32),
        x_adv_init=start.reshape(-1, 1, 8, 8).astype(np.float32)).reshape(len(x), -1)
    clean, moved = model.predict(x), model.predict(adversarial)
    distance = np.abs(adversarial - x).max(axis=1)
    for eps in (0.05, 0.1, 0.3):
        broken = (moved != clean) & (distance <= eps + 1e-9)
        assert found["hopskipjump", eps] == pytest.approx(np.mean(np.where(broken, moved, clean) == y), abs=0.01)
    assert found["hopskipjump", 0.3] <= found["hopskipjump", 0.1] <= found["hopskipjump", 0.05] <= result["clean"]
    assert found["hopskipjump", 0.3] < result["clean"]
    again = simulate_images(template({"condition": "hopskipjump", "values": [0.3],
                                      "options": {"max_iter": 3, "max_eval": 50}}), model, x, y)
    assert again["conditions"][0]["metric"] == found["hopskipjump", 0.3]  # seeded: the same run twice
    assert result["conditions"][-1]["details"]["one_attack_for_every_eps"] is True


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_a_model_without_gradients_is_refused_before_anything_runs(digits):
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier((16,), max_iter=50, random_state=0).fit(digits["x_train"], digits["y_train"])
    calls = []
    with pytest.raises(InvalidInput) as raised:
        simulate_images(template({"condition": "gaussian_noise", "values": [0.1]}, {"condition": "fgsm", "values": [0.1]}),
                        mlp, digits["x"], digits["y"], progress=lambda *args: calls.append(args))
    assert raised.value.code == "gradients_required" and calls == []
    assert "MLPClassifier has no loss gradients in ART" in raised.value.message
    assert "image_robustness_blackbox" in raised.value.message


def test_the_result_gallery_progress_and_errors(digits, monkeypatch):
    model, x, y = digits["model"], digits["x"], digits["y"]
    monkeypatch.setattr(image, "jpeg", lambda *args: (_ for _ in ()).throw(RuntimeError("no codec")))
    seen = []
    result = simulate_images(template({"condition": "gaussian_noise", "values": [0.2, 0.3]},
                                      {"condition": "jpeg", "values": [50, 20]},
                                      {"condition": "fgsm", "values": [0.1, 0.2]}),
                             model, x, y, gallery_size=5, progress=lambda *args: seen.append(args))
    PublishedResult.model_validate(result)
    assert result["errors"] == ["jpeg: RuntimeError: no codec"]
    assert [(row["condition"], row["value"]) for row in result["conditions"]] == \
        [("gaussian_noise", 0.2), ("gaussian_noise", 0.3), ("fgsm", 0.1), ("fgsm", 0.2)]
    assert seen[0] == ("clean", None, 1, 7) and [args[2] for args in seen] == sorted(args[2] for args in seen)
    assert seen[-1][:3] == ("fgsm", 0.2, 7)
    examples = result["examples"]
    assert len(examples) == 5 and all(example["prediction"] != example["label"] for example in examples)
    assert len({(example["condition"], example["value"]) for example in examples[:4]}) == 4  # one each first
    from PIL import Image

    for example in examples:
        for key in ("original_png", "perturbed_png"):
            with Image.open(io.BytesIO(base64.b64decode(example[key]))) as picture:
                assert picture.format == "PNG" and min(picture.size) >= 64
    assert examples[0]["original_png"] != examples[0]["perturbed_png"]
    assert set(result["environment"]) >= {"art", "sklearn", "numpy"} and result["environment"]["art"] == "1.20.1"
    assert result["kind"] == "image" and result["rows"] == 360 and result["probes"] == [] and result["drift"] == []
    json.dumps(result)


@pytest.mark.parametrize("columns, shape, expected", [
    (64, None, (1, 8, 8)), (784, None, (1, 28, 28)), (192, [3, 8, 8], (3, 8, 8)), (48, [6, 8], (1, 6, 8)),
])
def test_image_shapes(columns, shape, expected):
    assert image_shape_of(columns, shape) == expected


def test_image_shapes_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="no square image"):
        image_shape_of(65, None)
    with pytest.raises(ValueError, match="holds 48 pixels"):
        image_shape_of(64, [6, 8])


@pytest.mark.parametrize("top, given, expected", [
    (0.8, None, (0.0, 1.0)), (16.0, None, (0.0, 16.0)), (12.0, None, (0.0, 16.0)), (200.0, None, (0.0, 255.0)),
    (1000.0, None, (0.0, 1000.0)), (16.0, [-1, 1], (-1.0, 1.0)),
])
def test_pixel_ranges(top, given, expected):
    assert pixel_range_of(np.array([[0.0, top]]), given) == expected


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (CI installs it)")
def test_a_pytorch_model_goes_through_art_pytorch_classifier():
    """In a child process (torch is not imported beside the test process's threads): a linear module on flat
    rows and a small CNN on 8x8 images, each attacked with FGSM as ART's PyTorchClassifier does it directly."""
    script = textwrap.dedent('''
        import json, numpy as np, torch
        from art.attacks.evasion import FastGradientMethod
        from art.estimators.classification import PyTorchClassifier
        from sklearn.datasets import load_digits
        from aitip.simulation.image import simulate_images
        from aitip.simulation.templates import parse_template

        torch.manual_seed(0)
        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        flat = torch.nn.Sequential(torch.nn.Linear(64, 10))
        cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                  torch.nn.Linear(256, 10))
        out = {}
        for name, model, shape in (("flat", flat, (64,)), ("cnn", cnn, (1, 8, 8))):
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            inputs = torch.from_numpy(x[:1200].reshape((-1, *shape)))
            for _ in range(60):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(inputs), torch.from_numpy(y[:1200])).backward()
                optimizer.step()
            model.eval()
            template = parse_template({"name": "t", "title": "t", "kind": "image", "metric": "accuracy",
                                       "notebook": "image_robustness",
                                       "conditions": [{"condition": "fgsm", "values": [0.1]}]})
            result = simulate_images(template, model, x[1200:1500], y[1200:1500])
            estimator = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(), input_shape=shape, nb_classes=10,
                                          clip_values=(0.0, 1.0))
            adversarial = FastGradientMethod(estimator, eps=0.1).generate(x[1200:1500].reshape((-1, *shape)))
            direct = float(np.mean(estimator.predict(adversarial).argmax(1) == y[1200:1500]))
            out[name] = {"clean": result["clean"], "ours": result["conditions"][0]["metric"], "direct": direct,
                         "errors": result["errors"], "torch": result["environment"].get("torch")}
        print(json.dumps(out))
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("flat", "cnn"):
        row = found[name]
        assert row["errors"] == [] and row["torch"], row
        assert row["clean"] > 0.8 and row["ours"] < row["clean"], row
        assert row["ours"] == pytest.approx(row["direct"], abs=0.01), row


def test_the_image_notebook_runs_the_shipped_template(monkeypatch, tmp_path):
    import pandas
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    frame = pandas.DataFrame(x / 16.0, columns=[f"p{index}" for index in range(64)]).assign(label=y, split="train")
    frame.loc[test, "split"] = "test"
    model = LogisticRegression(max_iter=1000).fit(x[train] / 16.0, y[train])
    shipped = shipped_templates()["image_robustness"]
    document = run_notebook("image_robustness", {
        "template": shipped.model_dump(mode="json"), "model_path": save_model(model, tmp_path / "model"),
        "dataset": "digits", "gallery_size": 4}, monkeypatch, {("digits", None): frame})
    assert document["kind"] == "image" and document["rows"] == 360 and document["errors"] == []
    assert document["clean"] == pytest.approx(0.967, abs=0.001)
    found = metrics(document)
    assert found["pgd", 0.1] == pytest.approx(0.622, abs=0.001) and found["fgsm", 0.1] == pytest.approx(0.642, abs=0.001)
    assert len(document["examples"]) == 4
    verdict = judge(shipped, document)
    assert verdict["passed"] is True, verdict["reasons"]


def test_the_image_notebook_reads_an_image_folder(monkeypatch, tmp_path):
    """A folder of class folders of 8x8 PNGs with its splits.csv, and a model trained on their pixels / 255
    with the classes, image mode and size in its metadata (as notebooks/train/digits_images.ipynb logs them)."""
    import csv

    import pandas
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    folder = tmp_path / "digits"
    rows = []
    for index, (pixels, label) in enumerate(zip(x[:600], y[:600])):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels.reshape(8, 8) * 255 / 16).round().astype(np.uint8), "L").save(
            folder / str(label) / f"{index}.png")
        rows.append({"path": f"{label}/{index}.png", "split": "test" if index % 4 == 0 else "train"})
    with open(folder / "splits.csv", "w", newline="") as sink:
        writer = csv.DictWriter(sink, ["path", "split"])
        writer.writeheader()
        writer.writerows(rows)
    train = [index for index in range(600) if index % 4]
    pixels = (x[train] * 255 / 16).round() / 255
    model = LogisticRegression(max_iter=1000).fit(pixels, y[train].astype(str))
    metadata = {"classes": [str(label) for label in range(10)], "image_mode": "L", "image_size": [8, 8]}
    document = run_notebook("image_robustness", {
        "template": shipped_templates()["image_robustness"].model_dump(mode="json"),
        "model_path": save_model(model, tmp_path / "model", metadata), "dataset": "digits-images", "gallery_size": 2},
        monkeypatch, {}, paths={"digits-images": folder})
    assert document["rows"] == 150 and document["errors"] == []
    assert document["clean"] > 0.9 and metrics(document)["pgd", 0.2] < document["clean"]
    assert {example["label"] for example in document["examples"]} <= set(metadata["classes"])
    assert pandas.Series([row["samples"] for row in document["conditions"]]).eq(150).all()
