"""The offline steps as functions: what each numbered script runs, and what tests and benchmarks call.

Each ``run_*`` reads its inputs from :class:`~mlrec.core.paths.Paths`, writes its artifacts atomically,
prints one summary line and merges its figures into ``metrics.json``. The numbered scripts under
``offline/`` only parse arguments and call these.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mlrec.core import io
from mlrec.core.constants import GENRES, ISTEST, ITEMID, LABEL, TS, USERID
from mlrec.core.log import summary, timed
from mlrec.core.paths import (
    FEATURES_SCRIPT,
    RANK_SCRIPT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    Paths,
    step_name,
)
from mlrec.offline.features import ISVAL, build_features
from mlrec.offline.pit import item_genre_lists, item_genre_matrix, latest_counts, pit_counts, seen_items
from mlrec.offline.split import split_ratings
from mlrec.offline.terms import user_terms


def _raw_dir(paths: Paths) -> Path:
    from mlrec.data import active_raw_dir

    return active_raw_dir(paths)


def _dataset_name(paths: Paths) -> str:
    try:
        return json.loads(paths.dataset_marker.read_text()).get("dataset", "")
    except (OSError, json.JSONDecodeError):
        return ""


def run_split(paths: Paths) -> dict:
    """SPLIT_SCRIPT: ratings -> labelled offline (train/test) and online (last 10 per user) events."""
    from mlrec.data.movielens import load_ratings

    with timed() as t:
        ratings = load_ratings(_raw_dir(paths))
        split = split_ratings(ratings)
        io.write_parquet(split.offline, paths.offline_imp)
        io.write_parquet(split.online, paths.online_imp)
    offline, online = split.offline, split.online
    n_pos = int(offline[LABEL].sum() + online[LABEL].sum())
    fields = dict(
        ratings=len(ratings),
        positives=n_pos,
        negatives=len(ratings) - n_pos,
        online=len(online),
        train=int((offline[ISTEST] == 0).sum()),
        test=int((offline[ISTEST] == 1).sum()),
        seconds=t["seconds"],
    )
    summary(step_name(SPLIT_SCRIPT), paths.metrics, **fields)
    return fields


def run_terms(paths: Paths) -> dict:
    """TERMS_SCRIPT: point-in-time genre counts per offline event, latest-window counts per user,
    item genres and the per-user seen-item filter."""
    from mlrec.data.movielens import load_movies

    with timed() as t:
        offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL])
        genres = item_genre_matrix(load_movies(_raw_dir(paths)))
        pit = pit_counts(offline, genres)
        latest = latest_counts(offline, genres)
        io.write_parquet(pit, paths.pit_counts)
        io.write_parquet(latest, paths.user_counts)
        items = np.flatnonzero(genres.any(axis=1))
        io.write_id_lists(item_genre_lists(genres, items), paths.item_genres, ITEMID, GENRES)
        io.write_id_lists(seen_items(offline), paths.user_filter, USERID, ITEMID)
    fields = dict(rows=len(pit), users=len(latest), items=len(items), seconds=t["seconds"])
    summary(step_name(TERMS_SCRIPT), paths.metrics, **fields)
    return fields


def run_term_recall(paths: Paths) -> dict:
    """TERM_RECALL_SCRIPT: user terms from the latest window; item terms = item genres."""
    with timed() as t:
        latest = io.read_parquet(paths.user_counts, TERMS_SCRIPT)
        terms = user_terms(latest)
        item_terms = io.read_id_lists(paths.item_genres, TERMS_SCRIPT)
        io.write_id_lists(terms, paths.user_term, USERID, GENRES)
        io.write_id_lists(item_terms, paths.item_term, ITEMID, GENRES)
    with_terms = sum(1 for v in terms.values() if v)
    fields = dict(
        users=len(terms),
        users_with_terms=with_terms,
        mean_terms=round(sum(len(v) for v in terms.values()) / max(len(terms), 1), 3),
        items=len(item_terms),
        seconds=t["seconds"],
    )
    summary(step_name(TERM_RECALL_SCRIPT), paths.metrics, **fields)
    return fields


def run_features(paths: Paths) -> dict:
    """FEATURES_SCRIPT: the feature matrices, the user/item feature tables and the feature meta."""
    from mlrec.data.movielens import load_movies, load_users

    with timed() as t:
        raw = _raw_dir(paths)
        offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT)
        pit = io.read_parquet(paths.pit_counts, TERMS_SCRIPT)
        latest = io.read_parquet(paths.user_counts, TERMS_SCRIPT)
        tables = build_features(
            load_users(raw),
            item_genre_matrix(load_movies(raw)),
            offline,
            pit,
            latest,
            extra={"dataset": _dataset_name(paths)},
        )
        io.write_parquet(tables.train, paths.train_features)
        io.write_parquet(tables.test, paths.test_features)
        io.write_parquet(tables.users, paths.user_features)
        io.write_parquet(tables.items, paths.item_features)
        tables.meta.save(paths.feature_meta)
    meta = tables.meta
    fields = dict(
        features=meta.n_features,
        sparse_id=len(meta.sparse_id_dims),
        sparse_side=len(meta.sparse_side_dims),
        dense=meta.dense_dim,
        train=len(tables.train),
        val=int(tables.train[ISVAL].sum()),
        test=len(tables.test),
        users=len(tables.users),
        items=len(tables.items),
        seconds=t["seconds"],
    )
    summary(step_name(FEATURES_SCRIPT), paths.metrics, **fields)
    return fields


def _fit_and_test(
    make_model, name: str, checkpoint, train, is_val, test, columns: list[str], dtype, cfg, extra: dict | None = None
):
    """What both models share: seed, build, fit on train minus the validation slice (early stopping
    watches that slice), then (``cfg.refit``) a fresh model on all train rows for the chosen number of
    epochs; score the test set once, save the checkpoint. Returns (model, fields)."""
    import torch

    from mlrec.models import save_checkpoint
    from mlrec.offline.train import fit, fit_epochs, predict_logits, roc_auc

    def tensors(df):
        return (
            torch.from_numpy(df[columns].to_numpy(dtype, copy=True)),
            torch.from_numpy(df[LABEL].to_numpy(np.float32, copy=True)),
        )

    x_fit, y_fit = tensors(train[~is_val])
    x_val, y_val = tensors(train[is_val])
    x_test, y_test = tensors(test)
    torch.manual_seed(cfg.seed)
    model = make_model()
    result = fit(model, x_fit, y_fit, x_val, y_val, cfg)
    refit: dict = {}
    if cfg.refit:
        refit["test_auc_before_refit"] = round(roc_auc(y_test.numpy(), predict_logits(model, x_test)), 4)
        x_all, y_all = tensors(train)
        torch.manual_seed(cfg.seed)
        model = make_model()
        refit["refit_seconds"] = fit_epochs(model, x_all, y_all, result.best_epoch, cfg)
        refit["refit_epochs"] = result.best_epoch
    test_auc = roc_auc(y_test.numpy(), predict_logits(model, x_test))
    save_checkpoint(
        checkpoint, model, name, model.hparams, config=asdict(cfg), extra={**(extra or {}), "test_auc": test_auc}
    )
    fields = dict(
        epochs=len(result.history),
        best_epoch=result.best_epoch,
        val_auc=round(result.best_val_auc, 4),
        test_auc=round(test_auc, 4),
        **refit,
        history=[asdict(h) for h in result.history],
    )
    return model, fields


def run_vector_recall(paths: Paths, cfg=None) -> dict:
    """VECTOR_RECALL_SCRIPT: the served retrieval vectors, and the seed's MF for the seed protocol.

    The seed's 16-dim MF on (userid, itemid) is trained as before (early-stopped on a time-ordered
    validation slice of train, refit, scored on test: the seed protocol's MF AUC). The vectors saved
    for Redis / Elasticsearch are the 16-dim ALS of :mod:`mlrec.offline.retrieval`, chosen on
    validation recall@200: retrieval is scored on which items a user picks next, not on rated items."""
    from mlrec.data.movielens import load_movies, load_users
    from mlrec.models import MatrixFactorization
    from mlrec.offline.features import validation_mask
    from mlrec.offline.retrieval import train_retrieval
    from mlrec.offline.train import TrainConfig

    cfg = cfg or TrainConfig()
    with timed() as t:
        raw = _raw_dir(paths)
        n_users = int(load_users(raw)[USERID].max()) + 1
        n_items = int(load_movies(raw)[ITEMID].max()) + 1
        offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL, TS, ISTEST])
        train = offline[offline[ISTEST] == 0]
        _, fields = _fit_and_test(
            lambda: MatrixFactorization(n_users, n_items),
            "mf",
            paths.recall_model,
            train,
            validation_mask(train),
            offline[offline[ISTEST] == 1],
            [USERID, ITEMID],
            np.int64,
            cfg,
        )
        retrieval = train_retrieval(offline, n_users, n_items)
        io.write_npy(retrieval.user_vectors, paths.user_vector)
        io.write_npy(retrieval.item_vectors, paths.item_vector)
    fields.update(
        retrieval_val_recall=round(retrieval.val_recall, 4),
        retrieval=retrieval.chosen,
        retrieval_grid=retrieval.grid,
        users=n_users - 1,
        items=n_items - 1,
        seconds=t["seconds"],
    )
    summary(step_name(VECTOR_RECALL_SCRIPT), paths.metrics, **fields)
    return fields


def run_rank_train(paths: Paths, cfg=None) -> dict:
    """RANK_SCRIPT: DeepFM on the feature-meta columns, early-stopped on the validation slice,
    test AUC reported; the checkpoint keeps weights + constructor args + config."""
    from mlrec.models import DeepFM
    from mlrec.offline.feature_meta import FeatureMeta
    from mlrec.offline.train import TrainConfig

    cfg = cfg or TrainConfig()
    with timed() as t:
        meta = FeatureMeta.load(paths.feature_meta)
        train = io.read_parquet(paths.train_features, FEATURES_SCRIPT)
        test = io.read_parquet(paths.test_features, FEATURES_SCRIPT)
        _, fields = _fit_and_test(
            lambda: DeepFM.from_meta(meta),
            "deepfm",
            paths.rank_model,
            train,
            train[ISVAL].to_numpy() == 1,
            test,
            meta.names,
            np.float32,
            cfg,
            extra={"feature_names": meta.names},
        )
    fields.update(features=meta.n_features, seconds=t["seconds"])
    summary(step_name(RANK_SCRIPT), paths.metrics, **fields)
    return fields
