"""The offline pipeline end to end on small planted synthetic data (no services): every step's
artifacts exist and agree with each other, and the ranker learns the planted structure."""

import numpy as np
import pandas as pd
import pytest

from mlrec.core import io
from mlrec.core.constants import ISTEST, USERID
from mlrec.core.paths import Paths
from mlrec.data import prepare_dataset, write_marker
from mlrec.models import load_checkpoint
from mlrec.offline import pipeline
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.train import TrainConfig


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    paths = Paths(tmp_path_factory.mktemp("offline"))
    raw = prepare_dataset("synthetic", paths, scale=40_000, seed=3)
    write_marker(paths, "synthetic", raw, scale=40_000, seed=3)
    cfg = TrainConfig(epochs=30, batch_size=512, patience=3)
    out = {
        "split": pipeline.run_split(paths),
        "terms": pipeline.run_terms(paths),
        "term_recall": pipeline.run_term_recall(paths),
        "mf": pipeline.run_vector_recall(paths, cfg),
        "features": pipeline.run_features(paths),
        "rank": pipeline.run_rank_train(paths, cfg),
    }
    return paths, out


def test_counts_are_consistent(run):
    paths, out = run
    split = out["split"]
    assert split["train"] + split["test"] + split["online"] == split["ratings"] == 40_000
    assert split["positives"] + split["negatives"] == split["ratings"]
    offline = pd.read_parquet(paths.offline_imp)
    assert len(pd.read_parquet(paths.pit_counts)) == len(offline)
    assert out["features"]["train"] == (offline[ISTEST] == 0).sum()
    assert set(io.read_id_lists(paths.user_filter, "")) == set(offline[USERID])


def test_feature_meta_drives_every_artifact(run):
    paths, out = run
    meta = FeatureMeta.load(paths.feature_meta)
    assert meta.n_features == out["features"]["features"] == 59  # synthetic items always have a known genre
    assert list(pd.read_parquet(paths.test_features).columns[1:]) == meta.names
    _, ckpt = load_checkpoint(paths.rank_model)
    assert ckpt["extra"]["feature_names"] == meta.names


def test_vectors_cover_every_id(run):
    paths, _ = run
    users, items = io.read_npy(paths.user_vector, ""), io.read_npy(paths.item_vector, "")
    assert users.shape[1] == items.shape[1] == 16 and users.dtype == np.float32
    offline = pd.read_parquet(paths.offline_imp)
    assert users.shape[0] > offline[USERID].max()


def test_models_learn_the_planted_structure(run):
    _, out = run
    assert out["rank"]["test_auc"] > 0.6
    assert out["mf"]["test_auc"] > 0.55
    # early stopping watched validation, not test, and kept its best epoch
    assert 1 <= out["rank"]["best_epoch"] <= out["rank"]["epochs"]
