"""Small real notebooks for job tests."""

from __future__ import annotations

from typing import Any

import nbformat


def notebook(*cells: str, parameters: str | None = None, kernel: str = "aitip-python") -> dict[str, Any]:
    """A notebook whose first cell is the ``parameters`` cell (when given), then ``cells``."""
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    return dict(nbformat.from_dict(nb))


TRIVIAL = notebook("print('result', x * 2)", parameters="x = 1")


# A training notebook that reads a dataset (a CSV of feature columns and a ``label``) as a job's input: a
# linear classifier fitted epoch by epoch, its accuracy logged to the job's MLflow run at every epoch.
TRAIN_ON_DATASET = notebook(
    "import aitip.datasets\nimport mlflow\nimport numpy as np\n"
    "from sklearn.linear_model import SGDClassifier\nfrom sklearn.model_selection import train_test_split\n\n"
    "frame = aitip.datasets.to_pandas(dataset)\n"
    "features, labels = frame.drop(columns='label').to_numpy(), frame['label'].to_numpy()\n"
    "x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.25, random_state=0,\n"
    "                                                    stratify=labels)",
    "model = SGDClassifier(loss='log_loss', learning_rate='constant', eta0=learning_rate, random_state=0)\n"
    "for epoch in range(1, epochs + 1):\n"
    "    model.partial_fit(x_train, y_train, classes=np.unique(labels))\n"
    "    mlflow.log_metrics({'train_accuracy': model.score(x_train, y_train),\n"
    "                        'test_accuracy': model.score(x_test, y_test)}, step=epoch)\n"
    "print('test accuracy', model.score(x_test, y_test))",
    parameters="dataset = 'points'  # a CSV dataset with a label column\nepochs = 3\nlearning_rate = 0.01")
