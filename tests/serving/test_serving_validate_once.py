"""Validate once: where the flavor's own predict is used, its outputs are pyfunc's exactly.

For every supported column type: a scikit-learn model logged with that type's columns
either goes to the flavor's predict (and answers exactly what ``PyFuncModel.predict``
answers on the same frame) or keeps pyfunc's predict.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression

from serving.model import FLAVOR_SAFE_TYPES, PreparedItem, flavor_predict, load_model
from serving.protocol import COLUMN_TYPES, ColumnSpec

ROWS = 50
#: Given, so that saving does not infer them (a subprocess that took 34 s here).
PIP = ["scikit-learn"]


def _frame(kind: str, rng: np.random.Generator) -> pd.DataFrame:
    dtype = COLUMN_TYPES[kind][0]
    if kind == "boolean":
        values = rng.random((ROWS, 2)) > 0.5
    elif kind in ("integer", "long"):
        values = rng.integers(-1000, 1000, (ROWS, 2))
    else:
        values = rng.normal(0.0, 100.0, (ROWS, 2))
    return pd.DataFrame(values.astype(dtype), columns=["a", "b"])


@pytest.mark.parametrize("kind", sorted(FLAVOR_SAFE_TYPES))
def test_flavor_predict_answers_exactly_what_pyfunc_does(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frame = _frame(kind, rng)
    target = rng.normal(size=ROWS)
    path = tmp_path / "model"
    estimator = LinearRegression().fit(frame, target)
    signature = infer_signature(frame, estimator.predict(frame))
    mlflow.sklearn.save_model(estimator, str(path), signature=signature, pip_requirements=PIP)
    model = load_model("m", str(path))
    assert [c.type for c in model.inputs] == [kind, kind]
    assert model.validates_once
    items = [
        PreparedItem({c: frame[c].to_numpy()[i : i + 5] for c in ("a", "b")}, 5)
        for i in range(0, ROWS, 5)
    ]
    ours = np.concatenate([p.outputs["predictions"] for p in model.predict_batch(items)])
    theirs = np.asarray(model.pyfunc.predict(frame))
    assert ours.dtype == theirs.dtype
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("kind", sorted(set(COLUMN_TYPES) - FLAVOR_SAFE_TYPES))
def test_types_pyfunc_may_convert_keep_pyfunc_predict(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frame = _frame("double", rng)
    path = tmp_path / "model"
    estimator = LinearRegression().fit(frame, rng.normal(size=ROWS))
    mlflow.sklearn.save_model(
        estimator, str(path), signature=infer_signature(frame), pip_requirements=PIP
    )
    pyfunc = mlflow.pyfunc.load_model(str(path))
    columns = (ColumnSpec("a", "double"), ColumnSpec("b", kind))
    assert flavor_predict(pyfunc, columns) is None
    optional = (ColumnSpec("a", "double"), ColumnSpec("b", "double", required=False))
    assert flavor_predict(pyfunc, optional) is None
    assert flavor_predict(pyfunc, (ColumnSpec("a", "double"), ColumnSpec("b", "double")))


def test_a_custom_predict_fn_keeps_pyfunc_predict(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frame = _frame("double", rng)
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression().fit(frame, frame["a"] > 0)
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        estimator,
        str(path),
        signature=infer_signature(frame),
        pyfunc_predict_fn="predict_proba",
        pip_requirements=PIP,
    )
    model = load_model("m", str(path))
    assert not model.validates_once
    item = PreparedItem({c: frame[c].to_numpy() for c in ("a", "b")}, ROWS)
    ours = model.predict_batch([item])[0].outputs["predictions"]
    assert np.array_equal(ours, np.asarray(model.pyfunc.predict(frame)))
