"""``merge_features``: a widget's columns written into a layer's features, the user's kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_unet_weights._widgets.evaluate.features import merge_features

OURS = {"eval_score", "eval_status"}


def _ours(ids, scores) -> pd.DataFrame:
    return pd.DataFrame({"index": ids, "eval_score": scores,
                         "eval_status": [f"s{i}" for i in range(len(ids))]})


def test_without_user_columns_the_result_is_ours_sorted():
    old = _ours(np.array([9, 1]), [0.1, 0.2])  # a previous result: replaced entirely
    result = merge_features(old, _ours(np.array([3, 2]), [0.3, 0.4]), OURS)
    assert list(result["index"]) == [2, 3]
    assert list(result["eval_score"]) == [0.4, 0.3]


def test_user_values_and_dtypes_are_kept_when_no_row_is_added():
    user = pd.DataFrame({"index": np.array([2, 1, 7], np.int64),
                         "flag": np.array([True, False, True]),
                         "count": np.array([20, 10, 70], np.uint16),
                         "kind": pd.Categorical(["b", "a", "b"])})
    result = merge_features(user, _ours(np.array([1, 2]), [0.5, 0.6]), OURS)
    expected = user.sort_values("index").reset_index(drop=True)
    for column in ("index", "flag", "count", "kind"):
        pd.testing.assert_series_equal(result[column], expected[column])
    assert np.isnan(result.set_index("index").loc[7, "eval_score"])


def test_added_rows_keep_integer_and_boolean_values_exact():
    user = pd.DataFrame({"index": [1], "big": np.array([2**62 + 1], np.int64), "ok": [True]})
    result = merge_features(user, _ours(np.array([1, 2]), [0.5, 0.6]), OURS).set_index("index")
    assert result.loc[1, "big"] == 2**62 + 1
    assert result.loc[1, "ok"]
    assert pd.isna(result.loc[2, "big"]) and pd.isna(result.loc[2, "ok"])
    assert pd.api.types.is_integer_dtype(result["big"])


def test_rows_without_an_index_column_are_label_ids():
    user = pd.DataFrame({"kind": ["background", "one", "two"]})
    result = merge_features(user, _ours(np.array([2]), [0.9]), OURS).set_index("index")
    assert list(result["kind"]) == ["background", "one", "two"]
    assert result.loc[2, "eval_score"] == 0.9


def test_rows_only_we_added_go_when_their_id_does_not():
    user = pd.DataFrame({"index": [1], "kind": ["a"]})
    first = merge_features(user, _ours(np.array([1, 5]), [0.1, 0.5]), OURS)
    second = merge_features(first, _ours(np.array([1]), [0.2]), OURS)
    assert list(second["index"]) == [1]
    assert list(second["kind"]) == ["a"]


@pytest.mark.parametrize("user_dtype", [np.int32, np.int64, np.uint8])
def test_ids_beyond_the_user_index_dtype_stay_exact(user_dtype):
    huge = np.array([3, 2**63 + 5], np.uint64)
    user = pd.DataFrame({"index": np.array([3, 4], user_dtype), "kind": ["x", "y"]})
    result = merge_features(user, _ours(huge, [0.3, 0.9]), OURS)
    assert [int(i) for i in result["index"]] == [3, 4, 2**63 + 5]
    assert list(result["kind"].iloc[:2]) == ["x", "y"]
    assert result["eval_score"].iloc[2] == 0.9


def test_the_current_table_is_not_modified():
    user = pd.DataFrame({"kind": ["a", "b"], "eval_score": [1.0, 2.0]})
    copy = user.copy()
    merge_features(user, _ours(np.array([1]), [0.5]), OURS)
    pd.testing.assert_frame_equal(user, copy)
