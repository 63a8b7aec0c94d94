"""Every engine writes the numpy engine's artifacts: the split and the point-in-time counts identical, the seed
feature tables equal within float tolerance (SQL sums the mean and std in another order).

The pipeline is re-run on a copy of the session's offline run with ``engine=...``, and every artifact the
three prep steps write is compared with the numpy run's. The ratings get ties in time first (many events
of a user in the same second), so an engine that orders by time alone, or loses the file order in a
shuffle, fails here.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from mlrec.core import io
from mlrec.core.constants import ITEMID, LABEL, TS, USERID
from mlrec.core.paths import Paths
from mlrec.data.movielens import load_movies, load_ratings, load_users, write_movielens
from mlrec.offline import pipeline
from mlrec.offline.engines import EngineError, check_engine
from mlrec.offline.feature_meta import FeatureMeta

PREP_FILES = ("offline_imp", "online_imp", "pit_counts", "user_counts", "item_genres", "user_filter")


def _with_ties(paths: Paths) -> None:
    """The raw ratings with timestamps coarsened to 10,000 s: most users get runs of equal times."""
    from mlrec.data import active_raw_dir

    raw = active_raw_dir(paths)
    ratings = load_ratings(raw)
    ratings[TS] = ratings[TS] // 10_000 * 10_000
    write_movielens(raw, load_users(raw), load_movies(raw), ratings)


def _run_prep(paths: Paths, engine: str) -> dict:
    return {
        "split": pipeline.run_split(paths, engine=engine),
        "terms": pipeline.run_terms(paths, engine=engine),
        "features": pipeline.run_features(paths, engine=engine),
    }


@pytest.fixture(scope="module")
def numpy_run(offline_run, tmp_path_factory):
    """A copy of the offline run with tied timestamps, its prep steps re-run on numpy."""
    paths = Paths(tmp_path_factory.mktemp("engine-numpy"))
    shutil.copytree(offline_run.paths.root, paths.root, dirs_exist_ok=True)
    _with_ties(paths)
    _run_prep(paths, "numpy")
    ts = pd.read_parquet(paths.offline_imp, columns=[USERID, TS])
    assert ts.duplicated().mean() > 0.3, "the ties this test is about"
    return paths


def _engine_run(numpy_run: Paths, tmp_path, engine: str) -> tuple[Paths, dict]:
    paths = Paths(tmp_path / engine)
    shutil.copytree(numpy_run.root, paths.root)
    for name in PREP_FILES:  # nothing of the numpy run's output may survive into the comparison
        getattr(paths, name).unlink()
    paths.train_features.unlink()
    paths.test_features.unlink()
    return paths, _run_prep(paths, engine)


def _assert_same_prep(expected: Paths, got: Paths, report: dict) -> None:
    for name in ("offline_imp", "online_imp", "pit_counts", "user_counts"):
        pd.testing.assert_frame_equal(pd.read_parquet(getattr(got, name)), pd.read_parquet(getattr(expected, name)))
    for name in ("item_genres", "user_filter"):
        a, b = io.read_id_lists(getattr(got, name), ""), io.read_id_lists(getattr(expected, name), "")
        assert a.keys() == b.keys()
        assert all(np.array_equal(a[k], b[k]) for k in a)
    meta, want = FeatureMeta.load(got.seed_feature_meta), FeatureMeta.load(expected.seed_feature_meta)
    assert meta.names == want.names
    for f, g in zip(meta.features, want.features, strict=True):
        assert (f.kind, f.owner, f.cardinality) == (g.kind, g.owner, g.cardinality)
        assert f.mean == pytest.approx(g.mean, rel=1e-9, abs=1e-12) and f.std == pytest.approx(g.std, rel=1e-9)
    for name in ("train_features", "test_features"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(getattr(got, name)), pd.read_parquet(getattr(expected, name)), rtol=1e-6, atol=1e-6
        )
    # the served ranker's tables come from the (numpy) rest of the feature step: unchanged
    pd.testing.assert_frame_equal(pd.read_parquet(got.rank_examples), pd.read_parquet(expected.rank_examples))
    assert {step: fields["engine"] for step, fields in report.items()} == dict.fromkeys(report, got_engine(report))


def got_engine(report: dict) -> str:
    return report["split"]["engine"]


def test_duckdb_writes_the_numpy_artifacts(numpy_run, tmp_path):
    paths, report = _engine_run(numpy_run, tmp_path, "duckdb")
    _assert_same_prep(numpy_run, paths, report)
    assert got_engine(report) == "duckdb"


@pytest.mark.slow
def test_spark_writes_the_numpy_artifacts(numpy_run, tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    parts_seen: list[int] = []
    consolidate = io.consolidate_parquet

    def counting(parts, path, dtypes):
        parts_seen.append(len(parts))
        return consolidate(parts, path, dtypes)

    monkeypatch.setattr(io, "consolidate_parquet", counting)
    monkeypatch.setenv("MLREC_SPARK_PARTITIONS", "3")  # several part files, so their order is tested too
    paths, report = _engine_run(numpy_run, tmp_path, "spark")
    _assert_same_prep(numpy_run, paths, report)
    assert got_engine(report) == "spark"
    assert max(parts_seen) > 1


def test_file_order_decides_ties(numpy_run, tmp_path):
    """What the checks above rely on: the same ratings in another file order split differently (ties in time
    keep file order), so an engine that lost the order would fail them."""
    from mlrec.data import active_raw_dir

    paths = Paths(tmp_path / "shuffled")
    shutil.copytree(numpy_run.root, paths.root)
    raw = active_raw_dir(paths)
    write_movielens(raw, load_users(raw), load_movies(raw), load_ratings(raw).sample(frac=1.0, random_state=0))
    pipeline.run_split(paths, engine="duckdb")
    got, want = pd.read_parquet(paths.offline_imp), pd.read_parquet(numpy_run.offline_imp)
    assert not got.equals(want)

    def events(p: Paths) -> pd.DataFrame:  # every event, without its place
        both = pd.concat([pd.read_parquet(p.offline_imp), pd.read_parquet(p.online_imp)])
        return both[[USERID, ITEMID, LABEL, TS]].sort_values([USERID, ITEMID, TS], ignore_index=True)

    pd.testing.assert_frame_equal(events(paths), events(numpy_run))


def test_an_unknown_engine_is_named_with_the_choices():
    with pytest.raises(EngineError, match="unknown engine 'polars'") as info:
        check_engine("polars")
    assert "numpy, duckdb, spark" in info.value.hint


def test_a_bad_duckdb_memory_limit_is_named(tmp_path):
    from mlrec.offline.engines import DuckDBEngine

    with pytest.raises(EngineError, match="MLREC_DUCKDB_MEMORY='lots'") as info:
        DuckDBEngine(tmp_path, "lots")
    assert "2GB" in info.value.hint
    engine = DuckDBEngine(tmp_path, "1GB")
    assert engine.rows("SELECT current_setting('memory_limit')")[0][0].replace(" ", "") in ("1.0GiB", "953.6MiB")
    engine.close()
