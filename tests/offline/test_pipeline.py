"""The offline pipeline end to end on small planted synthetic data (no services): every step's
artifacts exist and agree with each other, the metrics file records what each step returned, and
the saved models are the early-stopped ones that learned the planted structure.

Two rankers come out of the rank step: the seed-protocol DeepFM (the seed's 59 features, rating > 3
among rated items; reported, not served) and the served ranker (DeepFM on the recall candidates of
two training moments, :mod:`mlrec.offline.candidates`). Both are checked here.

The artifacts come from the session's ``offline_run`` fixture (tests/conftest.py), which ``chain``
loads into the services too, so the pipeline is trained once per test run.
"""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from mlrec.core import io
from mlrec.core.constants import ISTEST, ITEMID, LABEL, USERID
from mlrec.core.paths import (
    FEATURES_SCRIPT,
    ITEM_RECALL_SCRIPT,
    RANK_SCRIPT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    step_name,
)
from mlrec.data import active_raw_dir
from mlrec.data.movielens import load_movies, load_users
from mlrec.evaluation.metrics import ndcg_at_k
from mlrec.models import DeepFM, DeepFMEnsemble, build_model, load_checkpoint
from mlrec.offline.candidates import (
    MOMENT,
    RECALL_POS,
    TRAIN_MOMENT,
    VAL_MOMENT,
    entity_features,
    ordered,
    recent_items,
    recent_popular,
)
from mlrec.offline.channels import EASE, REQUEST_FEATURES, SEQ
from mlrec.offline.feature_meta import FeatureMeta
from mlrec.offline.features import ISVAL, validation_mask
from mlrec.offline.neighbours import ease_neighbours, transition_neighbours
from mlrec.offline.pipeline import (
    SERVED_MEMBERS,
    SERVED_RANKER,
    _served_member_job,
    _served_member_refit_job,
    _within_candidates_ndcg,
    seed_protocol_configs,
)
from mlrec.offline.pit import item_genre_matrix
from mlrec.offline.retrieval import interactions, train_retrieval
from mlrec.offline.train import fit, fit_epochs, predict_logits, roc_auc

# report key of the offline_run fixture -> the script whose step name keys metrics.json
STEP_SCRIPTS = {
    "split": SPLIT_SCRIPT,
    "terms": TERMS_SCRIPT,
    "term_recall": TERM_RECALL_SCRIPT,
    "mf": VECTOR_RECALL_SCRIPT,
    "item_recall": ITEM_RECALL_SCRIPT,
    "features": FEATURES_SCRIPT,
    "rank": RANK_SCRIPT,
}
EXAMPLE_KEYS = [LABEL, MOMENT, RECALL_POS, USERID, ITEMID]  # rank_examples columns before the features


@pytest.fixture(scope="module")
def run(offline_run):
    return offline_run.paths, offline_run.report


@pytest.fixture(scope="module")
def examples(offline_run) -> pd.DataFrame:
    return pd.read_parquet(offline_run.paths.rank_examples)


def test_counts_are_consistent(run, offline_run, examples):
    paths, out = run
    split = out["split"]
    assert split["train"] + split["test"] + split["online"] == split["ratings"] == offline_run.scale
    assert split["positives"] + split["negatives"] == split["ratings"]
    offline = pd.read_parquet(paths.offline_imp)
    assert len(pd.read_parquet(paths.pit_counts)) == len(offline)
    assert out["features"]["seed_train"] == (offline[ISTEST] == 0).sum()
    assert out["features"]["seed_test"] == (offline[ISTEST] == 1).sum()
    assert set(io.read_id_lists(paths.user_filter, "")) == set(offline[USERID])
    assert set(examples[MOMENT]) == {TRAIN_MOMENT, VAL_MOMENT}
    for moment, name in ((TRAIN_MOMENT, "train"), (VAL_MOMENT, "val")):
        rows = examples[examples[MOMENT] == moment]
        assert out["features"][f"examples_{name}"] == len(rows) > 0
        assert out["features"][f"positives_{name}"] == rows[LABEL].sum() > 0
    raw = active_raw_dir(paths)
    catalogue = io.read_id_lists(paths.item_term, "")
    user_table, item_table = pd.read_parquet(paths.user_features), pd.read_parquet(paths.item_features)
    assert out["features"]["users"] == len(user_table) == len(load_users(raw))
    assert out["features"]["items"] == len(item_table) == len(catalogue)
    assert sorted(item_table[ITEMID]) == sorted(catalogue)


def test_metrics_file_records_what_each_step_returned(run):
    paths, out = run
    recorded = json.loads(paths.metrics.read_text())
    for key, script in STEP_SCRIPTS.items():
        assert recorded[step_name(script)] == out[key], key


def test_seed_feature_meta_drives_the_seed_protocol_artifacts(run):
    paths, out = run
    meta = FeatureMeta.load(paths.seed_feature_meta)
    assert meta.n_features == out["features"]["seed_features"] == 59  # synthetic items always have a known genre
    assert out["rank"]["seed_protocol"]["features"] == 59
    assert list(pd.read_parquet(paths.test_features).columns[1:]) == meta.names
    assert meta.names[:2] == [USERID, ITEMID]  # the seed's protocol keeps its id fields
    _, ckpt = load_checkpoint(paths.seed_rank_model)
    assert ckpt["extra"]["feature_names"] == meta.names


def test_served_feature_meta_drives_every_served_artifact(run, examples):
    """The served meta: no id fields (ids only size the tables), request-owned channel features last,
    the candidate examples and the Feast tables in its order, and the served checkpoint trained on it."""
    paths, out = run
    meta = FeatureMeta.load(paths.feature_meta)
    assert meta.n_features == out["features"]["features"] == out["rank"]["features"]
    assert meta.of_kind("sparse_id") == [] and meta.sparse_id_dims == []
    assert [f.name for f in meta.of_owner("request")] == list(REQUEST_FEATURES)  # every channel feature varies
    assert out["features"]["request_features"] == len(REQUEST_FEATURES)
    assert all(f.kind == "dense" for f in meta.of_owner("request"))
    assert meta.names[-len(REQUEST_FEATURES) :] == list(REQUEST_FEATURES)
    raw = active_raw_dir(paths)
    assert meta.id_space("user") == int(load_users(raw)[USERID].max()) + 1
    assert meta.id_space("item") == int(load_movies(raw)[ITEMID].max()) + 1
    assert list(examples.columns) == EXAMPLE_KEYS + meta.names
    assert all(examples[name].dtype == np.float32 for name in meta.names)
    assert list(pd.read_parquet(paths.user_features).columns) == [USERID, *(f.name for f in meta.of_owner("user"))]
    assert list(pd.read_parquet(paths.item_features).columns) == [ITEMID, *(f.name for f in meta.of_owner("item"))]
    _, ckpt = load_checkpoint(paths.rank_model)
    assert ckpt["extra"]["feature_names"] == meta.names
    assert ckpt["model_args"]["sparse_id_dims"] == [] and ckpt["model_args"]["deep_embeddings"] is True


def test_served_dense_features_are_standardized_on_the_train_moment(run, examples):
    paths, _ = run
    meta = FeatureMeta.load(paths.feature_meta)
    train = examples[examples[MOMENT] == TRAIN_MOMENT]
    for f in meta.of_kind("dense"):
        values = train[f.name].to_numpy(np.float64)
        assert abs(values.mean()) < 1e-4 and values.std(ddof=1) == pytest.approx(1.0, abs=1e-3), f.name
    for f in meta.of_kind("sparse_side"):
        codes = examples[f.name].to_numpy()
        assert (codes == np.round(codes)).all() and codes.min() >= 0 and codes.max() < f.cardinality, f.name


def test_feast_tables_are_every_offline_events_features_scaled_as_in_training(run):
    """What Feast serves is the serving moment's features (every offline event), with the train-moment scaling."""
    paths, _ = run
    meta = FeatureMeta.load(paths.feature_meta)
    raw = active_raw_dir(paths)
    offline = pd.read_parquet(paths.offline_imp)
    genres = item_genre_matrix(load_movies(raw))
    user_dense, item_dense = entity_features(offline, genres, meta.id_space("user"), meta.id_space("item"))
    for owner, table, dense, key in (
        ("user", pd.read_parquet(paths.user_features), user_dense, USERID),
        ("item", pd.read_parquet(paths.item_features), item_dense, ITEMID),
    ):
        ids = table[key].to_numpy()
        checked = 0
        for f in meta.of_owner(owner):
            if f.name in dense:
                expected = (dense[f.name][ids] - f.mean) / f.std
                np.testing.assert_allclose(table[f.name].to_numpy(np.float64), expected, rtol=1e-5, atol=1e-5)
                checked += 1
        assert checked >= 3, owner


def test_item_recall_artifacts_are_the_channel_models_on_every_offline_event(run):
    paths, out = run
    offline = ordered(pd.read_parquet(paths.offline_imp))
    meta = FeatureMeta.load(paths.feature_meta)
    n_users, n_items = meta.id_space("user"), meta.id_space("item")
    expected = {
        EASE: ease_neighbours(interactions(offline, n_users, n_items)),
        SEQ: transition_neighbours(offline, n_items),
    }
    for channel, (ids, weights) in expected.items():
        ids_path, weights_path = paths.neighbours(channel)
        np.testing.assert_array_equal(io.read_npy(ids_path, ""), ids)
        np.testing.assert_array_equal(io.read_npy(weights_path, ""), weights)
        assert ids.shape[0] == n_items
        assert out["item_recall"][f"{channel}_mean_neighbours"] == round(float((ids > 0).sum(axis=1).mean()), 1)
    recent = io.read_id_lists(paths.user_recent, "")
    assert recent.keys() == recent_items(offline).keys()
    for user, items in recent_items(offline).items():
        assert list(recent[user]) == items.tolist()
    popular = pd.read_parquet(paths.popular)
    pop_ids, pop_scores = recent_popular(offline)
    np.testing.assert_array_equal(popular[ITEMID].to_numpy(), pop_ids)
    np.testing.assert_array_equal(popular["score"].to_numpy(), pop_scores)
    assert out["item_recall"]["popular"] == len(pop_ids)


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
    assert io.read_json(paths.retrieval_params, "") == again.chosen  # what the training moments refit


def _check_early_stopping(fields: dict, patience: int, max_epochs: int, min_delta: float) -> None:
    """The history ends where the stopping rule says, and the reported best is the history's best."""
    history = fields["history"]
    aucs = [h["val_auc"] for h in history]
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert len(history) == min(fields["best_epoch"] + patience, max_epochs)
    assert aucs[fields["best_epoch"] - 1] == pytest.approx(fields["val_auc"], abs=1e-4)
    assert max(aucs) <= aucs[fields["best_epoch"] - 1] + min_delta  # no later epoch beat it by min_delta


def test_seed_ranker_learned_the_planted_structure_and_saved_its_refit(run, offline_run):
    """Early stopping chose the epoch count on validation; the seed-protocol checkpoint is the refit on
    all train rows for that many epochs (so it has seen the validation slice) and scores the test set as reported."""
    paths, out = run
    seed = out["rank"]["seed_protocol"]
    # the grid's settings were tried on the validation slice (the fixture's cfg keeps the defaults);
    # the reported model is the one with the better validation AUC
    configs = seed_protocol_configs(offline_run.cfg)
    assert len(configs) == 2
    assert [(t["lr"], t["weight_decay"]) for t in seed["tried"]] == [(c.lr, c.weight_decay) for c in configs]
    chosen = max(seed["tried"], key=lambda t: t["val_auc"])
    assert (seed["lr"], seed["weight_decay"], seed["val_auc"]) == (
        chosen["lr"],
        chosen["weight_decay"],
        chosen["val_auc"],
    )
    cfg = configs[seed["tried"].index(chosen)]
    assert seed["test_auc"] > 0.6
    _check_early_stopping(seed, cfg.patience, cfg.epochs, cfg.min_delta)
    meta = FeatureMeta.load(paths.seed_feature_meta)
    model, ckpt = load_checkpoint(paths.seed_rank_model)
    train, test = pd.read_parquet(paths.train_features), pd.read_parquet(paths.test_features)
    val = train[train[ISVAL] == 1]

    def auc(df: pd.DataFrame) -> float:
        return roc_auc(df[LABEL].to_numpy(), predict_logits(model, df[meta.names].to_numpy(np.float32, copy=True)))

    assert seed["refit_epochs"] == seed["best_epoch"]
    assert auc(val) > seed["val_auc"]  # the refit trained on the validation slice
    assert auc(test) == pytest.approx(seed["test_auc"], abs=1e-4) == ckpt["extra"]["test_auc"]


def _brute_ndcg10(frame: pd.DataFrame, scores: np.ndarray) -> float:
    """Mean NDCG@10 over users with a positive, by the definition (a Python loop; ties keep row order)."""
    values = []
    labels_all = frame[LABEL].to_numpy()
    for rows in frame.groupby(USERID, sort=False).indices.values():
        labels = labels_all[rows][np.argsort(-scores[rows], kind="stable")]
        n_rel = int(labels.sum())
        if n_rel == 0:
            continue
        dcg = sum(1.0 / np.log2(r + 2) for r in range(min(10, len(labels))) if labels[r] == 1)
        values.append(dcg / sum(1.0 / np.log2(r + 2) for r in range(min(n_rel, 10))))
    return float(np.mean(values))


def test_within_candidates_ndcg_matches_the_definition(examples):
    val = examples[examples[MOMENT] == VAL_MOMENT].reset_index(drop=True)
    rng = np.random.default_rng(0)
    for scores in (-val[RECALL_POS].to_numpy(np.float64), rng.normal(size=len(val)), rng.integers(0, 3, len(val))):
        scores = scores.astype(np.float64)
        assert _within_candidates_ndcg(val, scores) == pytest.approx(_brute_ndcg10(val, scores), abs=1e-12)
    # a perfect ranker scores 1 for every user with a positive
    assert _within_candidates_ndcg(val, val[LABEL].to_numpy(np.float64)) == pytest.approx(1.0)
    # ndcg_at_k agrees for one hand-made user: hits at ranks 1 and 3 of 2 relevant
    assert ndcg_at_k(np.array([[False, True, False, True]]), np.array([2]), 4)[0] == pytest.approx(
        (1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3))
    )


def _member(rank: dict, i: int) -> dict:
    """Member ``i``'s fields in the shape :func:`_check_early_stopping` reads."""
    return {"history": rank["history"][i], "best_epoch": rank["best_epoch"][i], "val_auc": rank["val_auc_members"][i]}


def _xy(rows: pd.DataFrame, meta: FeatureMeta) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(rows[meta.names].to_numpy(np.float32, copy=True)),
        torch.from_numpy(rows[LABEL].to_numpy(np.float32, copy=True)),
    )


def test_served_ranker_early_stopped_on_the_val_moment_and_beats_its_recall_order(run, offline_run, examples):
    """Each member of the served ranker trains on the train moment and early-stops on the val moment
    (same rule as the seed's); re-running a member's fit (seed ``cfg.seed + i``, in this process while
    the step used worker processes) reproduces its history and validation NDCG@10, and the union's
    recall order on the same rows gives the reported baseline, which the ensemble beats."""
    paths, out = run
    rank, cfg = out["rank"], offline_run.cfg
    assert rank["members"] == SERVED_MEMBERS == len(rank["history"]) == len(rank["best_epoch"])
    for i in range(SERVED_MEMBERS):
        _check_early_stopping(_member(rank, i), cfg.patience, cfg.epochs, cfg.min_delta)
    assert rank["val_auc"] > 0.6
    meta = FeatureMeta.load(paths.feature_meta)
    val = examples[examples[MOMENT] == VAL_MOMENT].reset_index(drop=True)
    train = examples[examples[MOMENT] == TRAIN_MOMENT]

    recall_order = -val[RECALL_POS].to_numpy(np.float64)
    assert _within_candidates_ndcg(val, recall_order) == pytest.approx(rank["val_ndcg10_recall_order"], abs=1e-4)
    assert _brute_ndcg10(val, recall_order) == pytest.approx(rank["val_ndcg10_recall_order"], abs=1e-4)

    last = SERVED_MEMBERS - 1  # the last member: its seed is offset the most
    torch.manual_seed(cfg.seed + last)
    model = DeepFM.from_meta(meta, **SERVED_RANKER)
    result = fit(model, *_xy(train, meta), *_xy(val, meta), replace(cfg, seed=cfg.seed + last))
    history = rank["history"][last]
    assert [(h.epoch, h.val_auc) for h in result.history] == [(h["epoch"], h["val_auc"]) for h in history]
    assert result.best_epoch == rank["best_epoch"][last]
    ndcg = _within_candidates_ndcg(val, predict_logits(model, _xy(val, meta)[0]))
    assert ndcg == pytest.approx(rank["val_ndcg10_members"][last], abs=1e-4)
    assert rank["val_ndcg10_ranker"] > rank["val_ndcg10_recall_order"]


def test_served_checkpoint_is_the_mean_of_members_refit_on_both_moments(run, offline_run, examples):
    """The served checkpoint is an ensemble whose member i is exactly a fresh ranker, seeded
    ``cfg.seed + i``, trained on both moments for its own early-stopped epoch count; it scores the
    mean of its members' logits."""
    paths, out = run
    rank, cfg = out["rank"], offline_run.cfg
    meta = FeatureMeta.load(paths.feature_meta)
    model, ckpt = load_checkpoint(paths.rank_model)
    assert isinstance(model, DeepFMEnsemble) and ckpt["model_name"] == "deepfm_ensemble"
    assert ckpt["model_args"]["members"] == SERVED_MEMBERS
    assert ckpt["extra"]["val_auc"] == pytest.approx(rank["val_auc"], abs=1e-4)
    x_all, y_all = _xy(examples, meta)
    for i in (0, SERVED_MEMBERS - 1):
        torch.manual_seed(cfg.seed + i)
        fresh = DeepFM.from_meta(meta, **SERVED_RANKER)
        assert {"members": SERVED_MEMBERS, **fresh.hparams} == model.hparams
        fit_epochs(fresh, x_all, y_all, rank["best_epoch"][i], replace(cfg, seed=cfg.seed + i))
        member = model.members[i].state_dict()
        for name, tensor in fresh.state_dict().items():
            torch.testing.assert_close(member[name], tensor, rtol=0, atol=0)
    x = x_all[:64]
    with torch.no_grad():
        mean = torch.stack([m(x) for m in model.members]).mean(dim=0)
        torch.testing.assert_close(model(x), mean)


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


def test_a_member_trains_on_capped_moments_and_still_scores_every_val_row(run, offline_run, examples):
    """Past ``max_rows`` rows per moment a member keeps every positive and samples negatives to the
    budget (its fit, its early-stopping slice, and its refit on both); the val NDCG it reports is
    still over every val-moment row."""
    paths, _ = run
    moment, label = examples[MOMENT].to_numpy(), examples[LABEL].to_numpy()
    positives = {key: int(label[moment == key].sum()) for key in (TRAIN_MOMENT, VAL_MOMENT)}
    cap = 2 * max(positives.values())
    assert (moment == TRAIN_MOMENT).sum() > cap and (moment == VAL_MOMENT).sum() > cap  # the cap bites
    cfg = replace(offline_run.cfg, epochs=2)
    stage1 = _served_member_job(paths, cfg, 0, max_rows=cap)
    assert stage1["rows"] == dict(fit=cap, early_stopping=cap)
    assert len(stage1["val_logits"]) == (moment == VAL_MOMENT).sum()
    assert 1 <= len(stage1["result"].history) <= 2
    stage2 = _served_member_refit_job(paths, cfg, 0, 1, max_rows=cap)
    assert stage2["refit_rows"] == 2 * cap
