"""The prep steps (label, split, point-in-time counts, the seed feature table) as SQL that DuckDB and Spark
SQL both run, so the engines share one text of the logic (:mod:`mlrec.offline.engines` executes it).

The numpy functions in :mod:`~mlrec.offline.split`, :mod:`~mlrec.offline.pit` and
:mod:`~mlrec.offline.features` stay the default engine (the fastest on one machine); a test checks that
every engine writes the same artifacts. Only the dialect both engines share is used: window functions
with ``ROWS`` frames, ``CAST(.. AS DOUBLE)`` (a bare ``0.8`` is a DECIMAL in Spark, and the split's
boundary must be computed in the same float64 as numpy's), ``CEIL``, ``COALESCE``.

Order is data here, never file position: a per-user window orders by ``(ts, seq)`` when splitting
(``seq`` = the ratings' file order, ties in time keep it) and by ``pos`` afterwards (the split writes
each event's place in its user's order), because a join or a shuffle may reorder rows.

The views every query expects (registered by the engine):

- ``ratings(userid, itemid, rating, ts, seq)`` — the split step's input;
- ``offline(userid, itemid, label, ts, pos, istest)`` — the split's offline artifact;
- ``item_genres(itemid, item_g0 .. item_g18)`` — 0/1 flags per item (:func:`~mlrec.offline.pit.item_genre_matrix`);
- ``user_codes(userid, gender, age, occupation)`` — vocabulary codes (:func:`~mlrec.offline.features.user_code_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mlrec.core.constants import (
    CLICK_RATING_THRESHOLD,
    ISTEST,
    ITEMID,
    LABEL,
    N_GENRES,
    OFFLINE_TEST_RATIO,
    ONLINE_LAST_N,
    PIT_WINDOW,
    POS,
    RATING,
    TS,
    USERID,
)
from mlrec.offline.feature_meta import Feature
from mlrec.offline.features import ISVAL, USER_CODES, VAL_RATIO
from mlrec.offline.pit import COUNT_COLUMNS, clk_col, imp_col

SEQ = "seq"  # the ratings' file order (the split's tie-break)
ONLINE = "online"  # 1 = one of the user's last ONLINE_LAST_N events
GENRE_FLAGS = [f"item_g{g}" for g in range(N_GENRES)]
USER_CODE_COLUMNS = [column for column, _ in USER_CODES]

OFFLINE_COLUMNS = [USERID, ITEMID, LABEL, TS, POS, ISTEST]
ONLINE_COLUMNS = [USERID, ITEMID, LABEL, TS, POS]


def _double(x: float) -> str:
    """A float64 literal both dialects read exactly (``repr`` round-trips)."""
    return f"CAST({x!r} AS DOUBLE)"


def split_sql(online_last_n: int = ONLINE_LAST_N, test_ratio: float = OFFLINE_TEST_RATIO) -> str:
    """Every rating labelled and placed: its ``pos``, whether it is held out online, and (offline rows)
    train or test. The same rule as :func:`mlrec.offline.split.split_ratings`, in the same float64."""
    return f"""
WITH ranked AS (
  SELECT {USERID}, {ITEMID}, CAST({RATING} > {CLICK_RATING_THRESHOLD} AS INT) AS {LABEL}, {TS},
         ROW_NUMBER() OVER (PARTITION BY {USERID} ORDER BY {TS}, {SEQ}) - 1 AS {POS},
         COUNT(*) OVER (PARTITION BY {USERID}) - {online_last_n} AS n_offline
  FROM ratings
)
SELECT {USERID}, {ITEMID}, {LABEL}, {TS}, {POS},
       CAST({POS} >= n_offline AS INT) AS {ONLINE},
       CAST(NOT (CAST({POS} AS DOUBLE) < CAST(n_offline AS DOUBLE) * {_double(1 - test_ratio)}) AS INT) AS {ISTEST}
FROM ranked"""


def split_part_sql(split_view: str, online: bool) -> str:
    """The offline (train + test) or the online rows of :func:`split_sql`'s result, in user-time order."""
    columns = ONLINE_COLUMNS if online else OFFLINE_COLUMNS
    return f"SELECT {', '.join(columns)} FROM {split_view} WHERE {ONLINE} = {int(online)} ORDER BY {USERID}, {POS}"


def _events_with_genres() -> str:
    flags = ", ".join(f"COALESCE(g.{f}, 0) AS {f}" for f in GENRE_FLAGS)
    return f"""
  SELECT o.{USERID}, o.{ITEMID}, o.{LABEL}, o.{POS}, o.{ISTEST}, {flags}
  FROM offline o LEFT JOIN item_genres g ON o.{ITEMID} = g.{ITEMID}"""


def _window_counts(window: int) -> str:
    frame = f"(PARTITION BY {USERID} ORDER BY {POS} ROWS BETWEEN {window} PRECEDING AND 1 PRECEDING)"
    sums = []
    for g in range(N_GENRES):
        sums.append(f"CAST(COALESCE(SUM(item_g{g}) OVER {frame}, 0) AS INT) AS {imp_col(g)}")
        sums.append(f"CAST(COALESCE(SUM(item_g{g} * {LABEL}) OVER {frame}, 0) AS INT) AS {clk_col(g)}")
    return ",\n         ".join(sums)


def pit_sql(window: int = PIT_WINDOW) -> str:
    """Per offline event, in user-time order: the genre counts over the ``window`` events strictly before
    it (:func:`mlrec.offline.pit.pit_counts`)."""
    return f"""
WITH e AS ({_events_with_genres()})
SELECT {", ".join(COUNT_COLUMNS)} FROM (
  SELECT {USERID}, {POS},
         {_window_counts(window)}
  FROM e
) ORDER BY {USERID}, {POS}"""


def latest_sql(window: int = PIT_WINDOW) -> str:
    """Per user: the genre counts over the user's latest ``window`` offline events (what serving sees,
    :func:`mlrec.offline.pit.latest_counts`)."""
    sums = []
    for g in range(N_GENRES):
        sums.append(f"CAST(SUM(item_g{g}) AS INT) AS {imp_col(g)}")
        sums.append(f"CAST(SUM(item_g{g} * {LABEL}) AS INT) AS {clk_col(g)}")
    return f"""
WITH e AS ({_events_with_genres()}),
c AS (SELECT e.*, COUNT(*) OVER (PARTITION BY {USERID}) AS n FROM e)
SELECT {USERID}, {", ".join(sums)}
FROM c WHERE {POS} >= n - {window}
GROUP BY {USERID} ORDER BY {USERID}"""


def seed_base_sql(window: int = PIT_WINDOW, val_ratio: float = VAL_RATIO) -> str:
    """Every offline event with each seed feature's raw value (before dropping and scaling), its label,
    istest and (train rows) isval: each user's latest ``val_ratio`` of train rows
    (:func:`mlrec.offline.features.validation_mask`)."""
    codes = ", ".join(f"COALESCE(u.{c}, 0) AS {c}" for c in USER_CODE_COLUMNS)
    carried = ", ".join(f"w.{c}" for c in GENRE_FLAGS + COUNT_COLUMNS)
    return f"""
WITH e AS ({_events_with_genres()}),
w AS (
  SELECT e.*,
         SUM(1 - {ISTEST}) OVER (PARTITION BY {USERID}) AS n_train,
         {_window_counts(window)}
  FROM e
)
SELECT w.{LABEL}, w.{ISTEST}, w.{POS},
       CAST(w.{ISTEST} = 0 AND w.{POS} >= CEIL(CAST(w.n_train AS DOUBLE) * {_double(1 - val_ratio)}) AS INT) AS {ISVAL},
       w.{USERID}, w.{ITEMID}, {codes}, {carried}
FROM w LEFT JOIN user_codes u ON w.{USERID} = u.{USERID}"""


def stats_sql(base_view: str, specs: Sequence[Feature]) -> str:
    """One row: the train rows' count, then min, max, mean and sample std of each candidate column (what
    :func:`mlrec.offline.features.keep_and_scale` decides on)."""
    parts = ["COUNT(*)"]
    for f in specs:
        x = f"CAST({f.name} AS DOUBLE)"
        parts += [f"MIN({x})", f"MAX({x})", f"AVG({x})", f"STDDEV_SAMP({x})"]
    return f"SELECT {', '.join(parts)} FROM {base_view} WHERE {ISTEST} = 0"


def seed_matrix_sql(base_view: str, kept: Sequence[Feature], train: bool) -> str:
    """The train (label, isval, features) or the test (label, features) table as float32 features in
    the meta's order, dense ones standardized, rows in user-time order."""
    columns = []
    for f in kept:
        x = f"CAST({f.name} AS DOUBLE)"
        if f.kind == "dense":
            x = f"({x} - {_double(f.mean)}) / {_double(f.std)}"
        columns.append(f"CAST({x} AS FLOAT) AS {f.name}")
    head = [LABEL, ISVAL] if train else [LABEL]
    return (
        f"SELECT {', '.join(head + columns)} FROM {base_view} "
        f"WHERE {ISTEST} = {0 if train else 1} ORDER BY {USERID}, {POS}"
    )
