"""Writing a widget's own columns into a Labels layer's ``features``, keeping the user's.

napari reads a Labels layer's ``features`` row by row: the row whose ``index`` column
holds a label id describes that label (without an ``index`` column, row ``i``
describes label ``i``). Users and other plugins keep their own columns there (a
``cell_type``, regionprops…). :func:`merge_features` writes a widget's columns into
such a table without touching the others: values, dtypes and rows of every other
column are kept, rows are ordered by label id, and the widget's previous columns
are replaced.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

__all__ = ["INDEX", "merge_features"]

#: The column napari matches label ids with.
INDEX = "index"


def merge_features(
    current: pd.DataFrame, ours: pd.DataFrame, our_columns: Collection[str]
) -> pd.DataFrame:
    """The layer's features with ``ours`` written in, every other column kept.

    Parameters
    ----------
    current : pandas.DataFrame
        The layer's features as they are (not modified).
    ours : pandas.DataFrame
        The columns to write: ``index`` (label ids) and the widget's own columns.
    our_columns : collection of str
        Every column name the widget may have written before: these are dropped from
        ``current`` first, so that a recomputation replaces them.

    Returns
    -------
    pandas.DataFrame
        One row per label id known to either table, ordered by id. Where one table
        has no row for an id, its columns are missing there (NaN, None or, for an
        integer or boolean column, pandas' nullable ``<NA>``, so that the values
        already there stay exact). Rows that only held the widget's values are
        dropped once the widget no longer knows their id.
    """
    user = _user_table(current, our_columns)
    if user is None:
        return ours.sort_values(INDEX, kind="stable").reset_index(drop=True)
    user, ours = _aligned_keys(user, ours)
    if not ours[INDEX].isin(user[INDEX]).all():
        user = _nullable(user)
    if not user[INDEX].isin(ours[INDEX]).all():
        ours = _nullable(ours)
    merged = user.merge(ours, on=INDEX, how="outer", sort=False)
    return merged.sort_values(INDEX, kind="stable").reset_index(drop=True)


def _user_table(current: pd.DataFrame, our_columns: Collection[str]) -> pd.DataFrame | None:
    """The rows and columns of ``current`` that the widget did not write (None if none).

    Without an ``index`` column, row ``i`` describes label ``i`` (napari's rule): the
    ids are made explicit. Rows whose every user value is missing were added for the
    widget's ids only, and are dropped.
    """
    table = current.drop(columns=[c for c in current.columns if c in our_columns])
    user_columns = [c for c in table.columns if c != INDEX]
    if not user_columns:
        return None
    if INDEX not in table.columns:
        table.insert(0, INDEX, np.arange(len(table)))
    return table[table[user_columns].notna().any(axis=1)]


def _aligned_keys(user: pd.DataFrame, ours: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables with ``index`` columns of one dtype that holds every id exactly."""
    user_keys, our_keys = user[INDEX], ours[INDEX]
    if user_keys.dtype == our_keys.dtype:
        return user, ours
    if _fits(our_keys, user_keys.dtype):
        return user, ours.astype({INDEX: user_keys.dtype})
    for dtype in (np.dtype(np.int64), np.dtype(np.uint64)):
        if _fits(user_keys, dtype) and _fits(our_keys, dtype):
            return user.astype({INDEX: dtype}), ours.astype({INDEX: dtype})
    as_objects = {INDEX: object}  # Python ints: exact for any id
    return user.astype(as_objects), ours.astype(as_objects)


def _fits(keys: pd.Series, dtype) -> bool:
    """Whether the integer ``keys`` can be stored as the integer ``dtype`` unchanged."""
    if not (isinstance(dtype, np.dtype) and dtype.kind in "iu"):
        return False
    if not (isinstance(keys.dtype, np.dtype) and keys.dtype.kind in "iu"):
        return False
    if keys.empty:
        return True
    limits = np.iinfo(dtype)
    return limits.min <= int(keys.min()) and int(keys.max()) <= limits.max


def _nullable(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its numpy integer and boolean columns (not ``index``) made nullable.

    A numpy integer column that gets a missing value turns into floats (inexact for
    large values) and a boolean one into objects; pandas' ``Int64`` / ``boolean``
    keep the values as they are.
    """
    nullable = {}
    for column in table.columns:
        dtype = table[column].dtype
        if column == INDEX or not isinstance(dtype, np.dtype):
            continue
        if dtype.kind == "b":
            nullable[column] = "boolean"
        elif dtype.kind in "iu":
            nullable[column] = f"{'U' if dtype.kind == 'u' else ''}Int{8 * dtype.itemsize}"
    return table.astype(nullable)
