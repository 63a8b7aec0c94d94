"""The offline pipeline end to end on small planted synthetic data (no services): every step's
artifacts exist and agree with each other, the metrics file records what each step returned, and
the saved models are the early-stopped ones that learned the planted structure.

The artifacts come from the session's ``offline_run`` fixture (tests/conftest.py), which ``chain``
loads into the services too, so the pipeline is trained once per test run.
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mlrec.core import io
from mlrec.core.constants import ISTEST, ITEMID, LABEL, USERID
from mlrec.core.paths import (
    FEATURES_SCRIPT,
    RANK_SCRIPT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    step_name,
)
from mlrec.models import build_model, load_checkpoint
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.features import ISVAL, validation_mask
from mlrec.offline.retrieval import train_retrieval
from mlrec.offline.train import fit_epochs, predict_logits, roc_auc

# report key of the offline_run fixture -> the script whose step name keys metrics.json
STEP_SCRIPTS = {
    "split": SPLIT_SCRIPT,
    "terms": TERMS_SCRIPT,
    "term_recall": TERM_RECALL_SCRIPT,
    "mf": VECTOR_RECALL_SCRIPT,
    "features": FEATURES_SCRIPT,
    "rank": RANK_SCRIPT,
}


@pytest.fixture(scope="module")
def run(offline_run):
    return offline_run.paths, offline_run.report


def test_counts_are_consistent(run, offline_run):
    paths, out = run
    split = out["split"]
    assert split["train"] + split["test"] + split["online"] == split["ratings"] == offline_run.scale
    assert split["positives"] + split["negatives"] == split["ratings"]
    offline = pd.read_parquet(paths.offline_imp)
    assert len(pd.read_parquet(paths.pit_counts)) == len(offline)
    assert out["features"]["train"] == (offline[ISTEST] == 0).sum()
    assert set(io.read_id_lists(paths.user_filter, "")) == set(offline[USERID])


def test_metrics_file_records_what_each_step_returned(run):
    paths, out = run
    recorded = json.loads(paths.metrics.read_text())
    for key, script in STEP_SCRIPTS.items():
        assert recorded[step_name(script)] == out[key], key


def test_feature_meta_drives_every_artifact(run):
    paths, out = run
    meta = FeatureMeta.load(paths.feature_meta)
    assert meta.n_features == out["features"]["features"] == 59  # synthetic items always have a known genre
    assert list(pd.read_parquet(paths.test_features).columns[1:]) == meta.names
    _, ckpt = load_checkpoint(paths.rank_model)
    assert ckpt["extra"]["feature_names"] == meta.names


def test_vectors_cover_every_id_and_are_the_retrieval_model(run):
    """The served vectors are the ALS retrieval chosen on validation recall, refit on every offline event."""
    paths, out = run
    users, items = io.read_npy(paths.user_vector, ""), io.read_npy(paths.item_vector, "")
    assert users.shape[1] == items.shape[1] == 16 and users.dtype == np.float32
    offline = pd.read_parquet(paths.offline_imp)
    assert users.shape[0] > offline[USERID].max()
    again = train_retrieval(offline, users.shape[0], items.shape[0])
    np.testing.assert_array_equal(users, again.user_vectors)
    np.testing.assert_array_equal(items, again.item_vectors)
    assert out["mf"]["retrieval"] == again.chosen
    assert out["mf"]["retrieval_val_recall"] == round(max(g["val_recall"] for g in again.grid), 4)


def _check_early_stopping(fields: dict, patience: int, max_epochs: int, min_delta: float) -> None:
    """The history ends where the stopping rule says, and the reported best is the history's best."""
    history = fields["history"]
    aucs = [h["val_auc"] for h in history]
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert len(history) == min(fields["best_epoch"] + patience, max_epochs)
    assert aucs[fields["best_epoch"] - 1] == pytest.approx(fields["val_auc"], abs=1e-4)
    assert max(aucs) <= aucs[fields["best_epoch"] - 1] + min_delta  # no later epoch beat it by min_delta


def test_ranker_learned_the_planted_structure_and_saved_its_refit(run, offline_run):
    """Early stopping chose the epoch count on validation; the checkpoint is the refit on all train
    rows for that many epochs (so it has seen the validation slice) and scores the test set as reported."""
    paths, out = run
    rank, cfg = out["rank"], offline_run.cfg
    assert rank["test_auc"] > 0.6
    _check_early_stopping(rank, cfg.patience, cfg.epochs, cfg.min_delta)
    meta = FeatureMeta.load(paths.feature_meta)
    model, ckpt = load_checkpoint(paths.rank_model)
    train, test = pd.read_parquet(paths.train_features), pd.read_parquet(paths.test_features)
    val = train[train[ISVAL] == 1]

    def auc(df: pd.DataFrame) -> float:
        return roc_auc(df[LABEL].to_numpy(), predict_logits(model, df[meta.names].to_numpy(np.float32, copy=True)))

    assert rank["refit_epochs"] == rank["best_epoch"]
    assert auc(val) > rank["val_auc"]  # the refit trained on the validation slice
    assert auc(test) == pytest.approx(rank["test_auc"], abs=1e-4) == ckpt["extra"]["test_auc"]


def test_mf_learned_the_planted_structure_and_saved_its_refit(run, offline_run):
    """The saved MF is exactly a fresh model trained on every train row for the early-stopped epoch count."""
    paths, out = run
    mf_fields, cfg = out["mf"], offline_run.cfg
    assert mf_fields["test_auc"] > 0.55
    _check_early_stopping(mf_fields, cfg.patience, cfg.epochs, cfg.min_delta)
    model, _ = load_checkpoint(paths.recall_model)
    offline = pd.read_parquet(paths.offline_imp)
    train = offline[offline[ISTEST] == 0]
    val, test = train[validation_mask(train)], offline[offline[ISTEST] == 1]

    def auc(df: pd.DataFrame) -> float:
        x = torch.from_numpy(df[[USERID, ITEMID]].to_numpy(np.int64, copy=True))
        return roc_auc(df[LABEL].to_numpy(), predict_logits(model, x))

    assert auc(test) == pytest.approx(mf_fields["test_auc"], abs=1e-4)
    assert auc(val) > mf_fields["val_auc"]  # the refit trained on the validation slice
    torch.manual_seed(cfg.seed)
    fresh = build_model("mf", model.hparams)
    x_all = torch.from_numpy(train[[USERID, ITEMID]].to_numpy(np.int64, copy=True))
    y_all = torch.from_numpy(train[LABEL].to_numpy(np.float32, copy=True))
    fit_epochs(fresh, x_all, y_all, mf_fields["best_epoch"], cfg)
    for name, tensor in fresh.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=0, atol=0)
