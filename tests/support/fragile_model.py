"""A training notebook whose model passes its evaluation and simulations but fails on part of production
traffic: the digits' logistic regression behind a first step that raises on a row with a negative pixel (the
project's data has none; a client that sends one gets a 500 from that version only). For the canary that must be
aborted, in the release tests and the canary benchmark. The pipeline is saved with cloudpickle, which keeps the
notebook's own class with it."""

from __future__ import annotations

from tests.support.notebooks import notebook

FRAGILE_TRAINING = notebook(
    "import aitip.datasets\nimport mlflow\nimport numpy as np\nfrom mlflow.models import infer_signature\n"
    "from sklearn.base import BaseEstimator, TransformerMixin\n"
    "from sklearn.linear_model import LogisticRegression\nfrom sklearn.pipeline import make_pipeline\n\n"
    "frame = aitip.datasets.to_pandas(dataset)\n"
    "pixels = [column for column in frame.columns if column not in ('label', 'split')]\n"
    "train, test = frame[frame['split'] == 'train'], frame[frame['split'] == 'test']\n"
    "x_train, x_test = train[pixels].to_numpy(float), test[pixels].to_numpy(float)",
    "class RefusesNegativePixels(BaseEstimator, TransformerMixin):\n"
    "    def fit(self, rows, labels=None):\n"
    "        return self\n\n"
    "    def transform(self, rows):\n"
    "        rows = np.asarray(rows, dtype=float)\n"
    "        if (rows < 0).any():\n"
    "            raise ValueError('a negative pixel')\n"
    "        return rows\n\n\n"
    "scale = float(x_train.max()) or 1.0\n"
    "pipeline = make_pipeline(RefusesNegativePixels(), LogisticRegression(C=1 / scale**2, max_iter=1000,\n"
    "                                                                      random_state=0))\n"
    "pipeline.fit(x_train, train['label'])\n"
    "mlflow.log_metric('test_accuracy', pipeline.score(x_test, test['label']))\n"
    "signature = infer_signature(x_test[:5], pipeline.predict(x_test[:5]))\n"
    "mlflow.sklearn.log_model(pipeline, name='model', signature=signature, input_example=x_test[:2],\n"
    "                         registered_model_name=model_name, serialization_format='cloudpickle',\n"
    "                         pip_requirements=['scikit-learn', 'cloudpickle'])\n"
    "print('registered', model_name)",
    parameters="dataset = 'digits'  # pixel columns, 'label' and 'split'\nmodel_name = 'digits-fragile'")
