"""The tabular conditions on a table with numeric and categorical features and a fitted pipeline: each changes
what it says it changes and moves the accuracy the expected way; drift scores the model on the reference and
measures PSI and KS per feature (checked against scipy and a hand computation); and the tabular notebook runs
end to end on a real MLflow model with the platform's data reads stood in for (:func:`run_notebook`, which the
image notebook's tests use too)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aitip.simulation import tabular
from aitip.simulation.results import PublishedResult
from aitip.simulation.tabular import feature_kinds, psi, simulate_tabular
from aitip.simulation.templates import parse_template, shipped_templates

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table():
    """2,000 rows: six numeric features, a colour that tells the class apart, a small integer level; a
    one-hot + scaled logistic regression fitted on the first 1,500."""
    import pandas
    from sklearn.compose import make_column_transformer
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = make_classification(2000, 6, n_informative=4, random_state=0)
    frame = pandas.DataFrame(x, columns=[f"f{index}" for index in range(6)])
    rng = np.random.default_rng(0)
    frame["colour"] = np.where(y == 1, rng.choice(["red", "blue"], 2000, p=[0.9, 0.1]),
                               rng.choice(["blue", "green"], 2000, p=[0.7, 0.3]))
    frame["level"] = (np.abs(x[:, 0]) * 2).astype(int).clip(0, 4)
    encoder = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["colour", "level"]),
                                      remainder=StandardScaler())
    model = make_pipeline(encoder, LogisticRegression(max_iter=500)).fit(frame[:1500], y[:1500])
    return {"model": model, "frame": frame[1500:].reset_index(drop=True), "y": y[1500:], "train": frame[:1500],
            "train_y": y[:1500]}


def template(*conditions):
    return parse_template({"name": "table_test", "title": "Table", "kind": "tabular", "metric": "accuracy",
                           "notebook": "tabular_robustness", "conditions": list(conditions)})


def metrics(result):
    return {(row["condition"], row["value"]): row["metric"] for row in result["conditions"]}


def test_feature_kinds(table):
    import pandas

    numeric, categorical = feature_kinds(table["frame"])
    assert numeric == [f"f{index}" for index in range(6)] and categorical == ["colour", "level"]
    mixed = pandas.DataFrame({"flag": [True, False] * 10, "many": range(20), "few": [1, 2] * 10,
                              "half": [0.5, 1.0] * 10})
    assert feature_kinds(mixed) == (["many", "half"], ["flag", "few"])


@pytest.mark.parametrize("name, values", [
    ("feature_noise", [0.2, 2.0]), ("missing_values", [0.1, 0.6]), ("category_swap", [0.2, 0.9]),
    ("feature_shift", [0.5, 2.5]),
])
def test_each_condition_lowers_accuracy_as_it_grows(table, name, values):
    result = simulate_tabular(template({"condition": name, "values": values}), table["model"], table["frame"],
                              table["y"])
    assert result["errors"] == []
    mild, strong = metrics(result)[name, values[0]], metrics(result)[name, values[1]]
    assert strong < mild <= result["clean"] + 0.02, (mild, strong, result["clean"])
    assert all(row["samples"] == 500 for row in result["conditions"])


def test_the_conditions_change_what_they_say(table):
    frame = table["frame"]
    numeric, categorical = feature_kinds(frame)
    rng = np.random.default_rng(0)
    std = frame[numeric].std(ddof=0)
    noisy = tabular.feature_noise(frame, 0.5, numeric, rng)
    assert (noisy[categorical] == frame[categorical]).all().all()
    assert ((noisy[numeric] - frame[numeric]).std(ddof=0) / std).to_numpy() == pytest.approx([0.5] * 6, abs=0.05)
    shifted = tabular.feature_shift(frame, 1.5, numeric)
    assert np.allclose(shifted[numeric] - frame[numeric], 1.5 * std.to_numpy())
    swapped = tabular.category_swap(frame, 0.3, categorical, rng)
    for column in categorical:
        changed = (swapped[column] != frame[column]).mean()
        assert changed == pytest.approx(0.3, abs=0.06) and set(swapped[column]) <= set(frame[column])
    holes = tabular.missing_values(frame, 0.2, "nan", np.random.default_rng(1))
    assert holes.isna().to_numpy().mean() == pytest.approx(0.2, abs=0.02)
    filled = tabular.missing_values(frame, 0.2, "mean", np.random.default_rng(1))
    assert not filled.isna().any().any()
    removed = holes["f1"].isna()
    assert np.allclose(filled.loc[removed, "f1"], frame["f1"].mean())
    assert (filled.loc[holes["colour"].isna(), "colour"] == frame["colour"].mode()[0]).all()
    zero = tabular.missing_values(frame, 0.2, "zero", np.random.default_rng(1))
    assert (zero.loc[removed, "f1"] == 0).all()


def test_missing_values_left_as_nan_is_an_error_of_that_condition_only(table):
    result = simulate_tabular(template({"condition": "missing_values", "values": [0.1], "options": {"fill": "nan"}},
                                       {"condition": "feature_noise", "values": [0.1]}),
                              table["model"], table["frame"], table["y"])
    assert len(result["errors"]) == 1 and result["errors"][0].startswith("missing_values 0.1: ValueError")
    assert [row["condition"] for row in result["conditions"]] == ["feature_noise"]


def test_drift_scores_the_reference_and_measures_each_feature(table):
    from scipy.stats import ks_2samp

    reference = table["train"][:500].copy()
    reference["f0"] = reference["f0"] + 1.0
    seen = []
    result = simulate_tabular(template({"condition": "drift", "values": [3]}), table["model"], table["frame"],
                              table["y"], references={3: (reference, table["train_y"][:500])},
                              progress=lambda *args: seen.append(args))
    PublishedResult.model_validate(result)
    (row,) = result["conditions"]
    expected = np.mean(table["model"].predict(reference) == table["train_y"][:500])
    assert row["metric"] == pytest.approx(expected) and row["samples"] == 500 and row["value"] == 3
    drift = {entry["feature"]: entry for entry in result["drift"]}
    assert set(drift) == set(table["frame"].columns)
    assert drift["f0"]["ks"] == pytest.approx(ks_2samp(reference["f0"], table["frame"]["f0"]).statistic)
    assert drift["f0"]["psi"] > 0.2 > max(drift[f"f{index}"]["psi"] for index in range(1, 6))
    assert drift["colour"]["ks"] is None and drift["colour"]["psi"] is not None
    assert row["details"]["drifted_features"] == 1 and row["details"]["max_psi"] == drift["f0"]["psi"]
    assert seen == [("clean", None, 1, 2), ("drift", 3, 2, 2)]
    missing = simulate_tabular(template({"condition": "drift", "values": [4]}), table["model"], table["frame"],
                               table["y"])
    assert missing["conditions"] == [] and "version 4 of the dataset was not given" in missing["errors"][0]


def test_psi_by_hand():
    reference = np.arange(1000, dtype=float)
    assert psi(reference, reference.copy(), categorical=False) == pytest.approx(0.0)
    # Every row of the current data in the reference's top decile: (1 - 0.1) ln(1 / 0.1) + 9 (1e-4 - 0.1) ln(1e-4 / 0.1)
    expected = 0.9 * np.log(10) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert psi(reference, np.full(100, 999.0), categorical=False) == pytest.approx(expected, rel=1e-3)
    categories = np.array(["a"] * 50 + ["b"] * 50)
    shifted = np.array(["a"] * 80 + ["b"] * 20)
    assert psi(categories, shifted, categorical=True) == pytest.approx(
        (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5))


def run_notebook(name, parameters, monkeypatch, tables, paths=None):
    """The notebook's code cells run in one namespace, its parameters cell replaced by ``parameters``, with
    ``aitip.datasets`` reading ``tables`` (the platform's reads, stood in for); returns the published result."""
    import aitip.datasets
    from aitip.simulation import results

    notebook = json.loads((ROOT / "notebooks" / "simulate" / f"{name}.ipynb").read_text())
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    declared = "".join(cells[0]["source"])
    assert "parameters" in cells[0]["metadata"]["tags"]
    for parameter in ("template", "model_path", "dataset", "reference_dataset", "endpoint", "gallery_size"):
        assert f"{parameter} = " in declared, parameter
    monkeypatch.setattr(aitip.datasets, "to_pandas", lambda dataset, version=None: tables[dataset, version])
    monkeypatch.setattr(aitip.datasets, "path", lambda dataset, version=None: (paths or {}).get(
        dataset, Path(f"/nonexistent/{dataset}.parquet")), raising=False)
    published = []
    monkeypatch.setattr(results, "display_result", lambda mime, document, summary: published.append(document))
    namespace: dict = {}
    exec(compile(declared, "parameters", "exec"), namespace)  # noqa: S102 - the repository's own notebook
    namespace.update(parameters)
    for cell in cells[1:]:
        exec(compile("".join(cell["source"]), f"{name}.ipynb", "exec"), namespace)  # noqa: S102
    assert len(published) == 1
    return published[0]


def save_model(model, folder, metadata=None):
    import mlflow.sklearn

    mlflow.sklearn.save_model(model, str(folder), pip_requirements=["scikit-learn"], metadata=metadata)
    return str(folder)


def test_the_tabular_notebook_runs_the_shipped_template(table, monkeypatch, tmp_path):
    import pandas

    frame = pandas.concat([table["frame"].assign(label=table["y"], split="test"),
                           table["train"].assign(label=table["train_y"], split="train")], ignore_index=True)
    reference = table["train"][:400].assign(label=table["train_y"][:400], split="test")
    shipped = shipped_templates()["tabular_robustness"].model_dump(mode="json")
    document = run_notebook("tabular_robustness", {
        "template": shipped, "model_path": save_model(table["model"], tmp_path / "model"), "dataset": "table",
        "reference_dataset": "table@1"}, monkeypatch, {("table", None): frame, ("table", 1): reference})
    assert document["kind"] == "tabular" and document["rows"] == 500 and document["errors"] == []
    assert {row["condition"] for row in document["conditions"]} == {
        "feature_noise", "missing_values", "category_swap", "feature_shift", "drift"}
    assert document["clean"] == pytest.approx(np.mean(table["model"].predict(table["frame"]) == table["y"]))
    assert len(document["drift"]) == 8


def test_a_template_of_another_kind_is_not_run_on_a_table(table):
    from aitip.errors import InvalidInput

    image_template = shipped_templates()["image_robustness"]
    with pytest.raises(InvalidInput, match="not run on a table"):
        simulate_tabular(image_template, table["model"], table["frame"], table["y"])
