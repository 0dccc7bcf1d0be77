"""MlflowModel: signature handling, one frame per batch, exact splitting, mismatch detection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model as MlflowMeta
from mlflow.models.signature import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from serving.batching import OutputMismatch
from serving.model import (
    MlflowModel,
    ModelLoadError,
    PreparedItem,
    join_predictions,
    load_model,
    resolve_uri,
    split_item,
)
from serving.protocol import Prediction

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("double", "a"), ColSpec("long", "b")]),
    outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
)


class FakePyfunc:
    """Stands in for PyFuncModel: records the frames it sees and returns ``answer(frame)``."""

    def __init__(self, signature: ModelSignature | None, answer: Any = None) -> None:
        self.metadata = MlflowMeta(signature=signature)
        self.frames: list[pd.DataFrame] = []
        self.answer = answer or (lambda frame: (frame["a"] * 10 + frame["b"]).to_numpy())

    def predict(self, frame: pd.DataFrame) -> Any:
        self.frames.append(frame)
        return self.answer(frame)


def item(rows: list[tuple[float, int]]) -> PreparedItem:
    a = np.array([r[0] for r in rows], dtype=np.float64)
    b = np.array([r[1] for r in rows], dtype=np.int64)
    return PreparedItem({"a": a, "b": b}, len(rows))


def model(pyfunc: FakePyfunc) -> MlflowModel:
    return MlflowModel("m", "3", pyfunc)  # type: ignore[arg-type]


def test_one_frame_per_batch_and_results_split_per_item() -> None:
    fake = FakePyfunc(SIGNATURE)
    m = model(fake)
    items = [item([(1.0, 1)]), item([(2.0, 2), (3.0, 3), (4.0, 4)]), item([(5.0, 5)])]
    results = m.predict_batch(items)
    assert len(fake.frames) == 1
    assert list(fake.frames[0].columns) == ["a", "b"]
    assert fake.frames[0]["b"].dtype == np.int64
    assert [r.outputs["predictions"].tolist() for r in results] == [
        [11.0],
        [22.0, 33.0, 44.0],
        [55.0],
    ]


def test_dataframe_outputs_are_tabular() -> None:
    m = model(FakePyfunc(SIGNATURE, lambda f: pd.DataFrame({"p": f["a"], "q": f["b"]})))
    first, second = m.predict_batch([item([(1.0, 1)]), item([(2.0, 2)])])
    assert first.tabular and first.outputs["q"].tolist() == [1]
    assert second.outputs["p"].tolist() == [2.0]


@pytest.mark.parametrize(
    "answer",
    [lambda f: np.zeros(len(f) - 1), lambda f: np.zeros(len(f) + 1), lambda f: 1.0, lambda f: "x"],
)
def test_wrong_number_of_outputs_is_an_output_mismatch(answer: Any) -> None:
    m = model(FakePyfunc(SIGNATURE, answer))
    with pytest.raises(OutputMismatch, match="model 'm'"):
        m.predict_batch([item([(1.0, 1)]), item([(2.0, 2)])])


def test_metadata_from_signature() -> None:
    m = model(FakePyfunc(SIGNATURE))
    assert [(c.name, c.type, c.datatype) for c in m.inputs] == [
        ("a", "double", "FP64"),
        ("b", "long", "INT64"),
    ]
    assert [(o.name, o.datatype, o.shape) for o in m.outputs] == [("predictions", "FP64", (-1,))]
    m.warm_up()  # a neutral 1-row predict goes through the same path


def test_models_without_a_usable_signature_are_refused_at_load() -> None:
    with pytest.raises(ModelLoadError, match="model 'm' has no signature"):
        model(FakePyfunc(None))
    tensor = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float64"), (-1, 3))]))
    with pytest.raises(ModelLoadError, match="tensor or unnamed input signature"):
        model(FakePyfunc(tensor))


def test_uri_resolution_without_a_registry() -> None:
    assert resolve_uri("models:/iris/7") == ("models:/iris/7", "7")
    assert resolve_uri("/srv/models/iris") == ("/srv/models/iris", "1")


def test_load_errors_name_the_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model 'ghost' \(.*\): cannot load"):
        load_model("ghost", str(tmp_path / "nothing-here"))


def test_split_item_and_join_predictions_round_trip() -> None:
    x = np.arange(5.0)
    parts = split_item(PreparedItem({"x": x}, 5), 2)
    assert [p.rows for p in parts] == [2, 2, 1]
    assert all(np.shares_memory(p.columns["x"], x) for p in parts)  # views, no copy
    joined = join_predictions([Prediction({"y": p.columns["x"] * 2}) for p in parts])
    np.testing.assert_array_equal(joined.outputs["y"], x * 2)
    whole = PreparedItem({"x": x}, 5)
    assert split_item(whole, 5) == [whole]
