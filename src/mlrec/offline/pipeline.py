"""The offline steps as functions: what each numbered script runs, and what tests and benchmarks call.

Each ``run_*`` reads its inputs from :class:`~mlrec.core.paths.Paths`, writes its artifacts atomically,
prints one summary line and merges its figures into ``metrics.json``. The numbered scripts under
``offline/`` only parse arguments and call these.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core import io
from mlrec.core.constants import GENRES, ISTEST, ITEMID, LABEL, TS, USERID
from mlrec.core.log import summary, timed
from mlrec.core.paths import (
    FEATURES_SCRIPT,
    ITEM_RECALL_SCRIPT,
    RANK_SCRIPT,
    SPLIT_SCRIPT,
    TERM_RECALL_SCRIPT,
    TERMS_SCRIPT,
    VECTOR_RECALL_SCRIPT,
    Paths,
    step_name,
)
from mlrec.offline import sql_steps
from mlrec.offline.engines import SqlEngine, check_engine, open_engine
from mlrec.offline.features import ISVAL, write_features
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


@contextmanager
def _sql_engine(name: str, paths: Paths) -> Iterator[SqlEngine]:
    """A started SQL engine with a scratch folder beside the artifacts, stopped (and the folder removed) after."""
    with io.scratch_dir(paths.common_dir / "engine") as staging:
        engine = open_engine(name, staging)
        try:
            yield engine
        finally:
            engine.close()


def run_split(paths: Paths, engine: str = "numpy") -> dict:
    """SPLIT_SCRIPT: ratings -> labelled offline (train/test) and online (last 10 per user) events."""
    from mlrec.data.event_log import merge_events
    from mlrec.data.movielens import load_ratings

    with timed() as t:
        ratings, logged, skipped = merge_events(
            load_ratings(_raw_dir(paths)), paths.logged_events(_dataset_name(paths))
        )
        if check_engine(engine) == "numpy":
            split = split_ratings(ratings)
            io.write_parquet(split.offline, paths.offline_imp)
            io.write_parquet(split.online, paths.online_imp)
            offline, online = split.offline, split.online
        else:
            with _sql_engine(engine, paths) as sql:
                sql_steps.split(sql, ratings, paths.offline_imp, paths.online_imp)
            offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[LABEL, ISTEST])
            online = io.read_parquet(paths.online_imp, SPLIT_SCRIPT, columns=[LABEL])
    n_pos = int(offline[LABEL].sum() + online[LABEL].sum())
    fields = dict(
        ratings=len(ratings),
        logged_events=logged,
        logged_skipped=skipped,
        positives=n_pos,
        negatives=len(ratings) - n_pos,
        online=len(online),
        train=int((offline[ISTEST] == 0).sum()),
        test=int((offline[ISTEST] == 1).sum()),
        engine=engine,
        seconds=t["seconds"],
    )
    summary(step_name(SPLIT_SCRIPT), paths.metrics, **fields)
    return fields


def run_terms(paths: Paths, engine: str = "numpy") -> dict:
    """TERMS_SCRIPT: point-in-time genre counts per offline event, latest-window counts per user,
    item genres and the per-user seen-item filter."""
    from mlrec.data.movielens import load_movies

    with timed() as t:
        genres = item_genre_matrix(load_movies(_raw_dir(paths)))
        if check_engine(engine) == "numpy":
            offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL])
            pit = pit_counts(offline, genres)
            latest = latest_counts(offline, genres)
            io.write_parquet(pit, paths.pit_counts)
            io.write_parquet(latest, paths.user_counts)
            n_pit, n_latest = len(pit), len(latest)
        else:
            io.require(paths.offline_imp, SPLIT_SCRIPT)
            with _sql_engine(engine, paths) as sql:
                sql_steps.register_lookups(sql, genres)
                n_pit, n_latest = sql_steps.counts(sql, paths.offline_imp, paths.pit_counts, paths.user_counts)
            offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID])
        items = np.flatnonzero(genres.any(axis=1))
        io.write_id_lists(item_genre_lists(genres, items), paths.item_genres, ITEMID, GENRES)
        io.write_id_lists(seen_items(offline), paths.user_filter, USERID, ITEMID)
    fields = dict(rows=n_pit, users=n_latest, items=len(items), engine=engine, seconds=t["seconds"])
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


def run_item_recall(paths: Paths) -> dict:
    """ITEM_RECALL_SCRIPT: the item-to-item channels' neighbour lists, each user's recent items and the
    popularity channel, all fit on every offline event (what the server reads from Redis)."""
    from mlrec.offline.candidates import ordered, recent_items, recent_popular
    from mlrec.offline.channels import EASE, SEQ
    from mlrec.offline.neighbours import ease_neighbours, transition_neighbours
    from mlrec.offline.retrieval import interactions

    with timed() as t:
        offline = ordered(io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, TS]))
        n_users, n_items = _id_space(paths)
        tables = {
            EASE: ease_neighbours(interactions(offline, n_users, n_items)),
            SEQ: transition_neighbours(offline, n_items),
        }
        for channel, (ids, weights) in tables.items():
            ids_path, weights_path = paths.neighbours(channel)
            io.write_npy(ids, ids_path)
            io.write_npy(weights, weights_path)
        recent = recent_items(offline)
        io.write_id_lists(recent, paths.user_recent, USERID, ITEMID)
        pop_ids, pop_scores = recent_popular(offline)
        io.write_parquet(pd.DataFrame({ITEMID: pop_ids, "score": pop_scores}), paths.popular)
    fields = dict(
        items=n_items - 1,
        users=len(recent),
        **{f"{c}_mean_neighbours": round(float((ids > 0).sum(axis=1).mean()), 1) for c, (ids, _) in tables.items()},
        popular=len(pop_ids),
        seconds=t["seconds"],
    )
    summary(step_name(ITEM_RECALL_SCRIPT), paths.metrics, **fields)
    return fields


def _id_space(paths: Paths) -> tuple[int, int]:
    """(max user id + 1, max item id + 1) over the raw users and movies: every id-indexed table's length."""
    from mlrec.data.movielens import load_movies, load_users

    raw = _raw_dir(paths)
    return int(load_users(raw)[USERID].max()) + 1, int(load_movies(raw)[ITEMID].max()) + 1


def _moment_job(events, labels, genres, n_users, n_items, catalogue, als, cfg, key):
    """One training moment: its refit channel models and its candidate examples. Runs in a worker."""
    from mlrec.offline.candidates import fit_moment, moment_examples

    moment = fit_moment(events, genres, n_users, n_items, catalogue, als)
    return moment, moment_examples(moment, labels, genres, cfg, key)


def run_features(paths: Paths, cfg=None, engine: str = "numpy", seed_only: bool = False) -> dict:
    """FEATURES_SCRIPT: the seed's 59-feature tables (seed protocol; on ``engine``) and, unless ``seed_only``,
    the served ranker's candidate examples at two training moments (side by side in ``offline_workers``
    processes), its feature meta and its Feast tables."""
    from mlrec.data.movielens import load_movies, load_users

    with timed() as t:
        raw = _raw_dir(paths)
        users, genres = load_users(raw), item_genre_matrix(load_movies(raw))
        # numpy's seed tables and the served half both need the split: read once, and only if one asks
        offline = functools.cache(functools.partial(io.read_parquet, paths.offline_imp, SPLIT_SCRIPT))
        fields = _seed_tables(paths, check_engine(engine), users, genres, offline)
        if not seed_only:
            fields |= _served_tables(paths, cfg, users, genres, offline)
    fields |= dict(engine=engine, seconds=t["seconds"])
    summary(step_name(FEATURES_SCRIPT), paths.metrics, **fields)
    return fields


def _seed_tables(
    paths: Paths, engine: str, users: pd.DataFrame, genres: np.ndarray, offline: Callable[[], pd.DataFrame]
) -> dict:
    """The seed protocol's train/test tables and their meta, computed on ``engine`` (numpy: from ``offline()``)."""
    extra = {"dataset": _dataset_name(paths)}
    if engine == "numpy":
        pit = io.read_parquet(paths.pit_counts, TERMS_SCRIPT)
        latest = io.read_parquet(paths.user_counts, TERMS_SCRIPT)
        meta, n_train, n_test = write_features(
            users, genres, offline(), pit, latest, paths.train_features, paths.test_features, extra
        )
    else:
        io.require(paths.offline_imp, SPLIT_SCRIPT)
        with _sql_engine(engine, paths) as sql:
            sql_steps.register_lookups(sql, genres, users)
            meta, n_train, n_test = sql_steps.seed_features(
                sql,
                paths.offline_imp,
                int(users[USERID].max()) + 1,
                genres.shape[0],
                paths.train_features,
                paths.test_features,
                extra,
            )
    meta.save(paths.seed_feature_meta)
    return dict(seed_features=meta.n_features, seed_train=n_train, seed_test=n_test)


def _served_tables(
    paths: Paths, cfg, users: pd.DataFrame, genres: np.ndarray, offline: Callable[[], pd.DataFrame]
) -> dict:
    """The served ranker's examples (channel models refit at two moments), its meta and its Feast tables."""
    from mlrec.core.parallel import run_jobs
    from mlrec.core.settings import Settings
    from mlrec.offline.candidates import (
        MOMENT,
        TRAIN_MOMENT,
        VAL_MOMENT,
        CandidateConfig,
        entity_features,
        training_moments,
    )
    from mlrec.offline.rank_features import build_rank_matrix, serving_tables

    cfg = cfg or CandidateConfig()
    offline_events = offline()
    n_users, n_items = _id_space(paths)
    catalogue = np.array(sorted(io.read_id_lists(paths.item_term, TERM_RECALL_SCRIPT)), dtype=np.int64)
    als = io.read_json(paths.retrieval_params, VECTOR_RECALL_SCRIPT)
    keys = (TRAIN_MOMENT, VAL_MOMENT)
    jobs = [
        (_moment_job, (events, labels, genres, n_users, n_items, catalogue, als, cfg, key))
        for key, (events, labels) in zip(keys, training_moments(offline_events), strict=True)
    ]
    done = run_jobs(jobs, Settings.from_env().offline_workers)
    moments = {key: moment for key, (moment, _) in zip(keys, done, strict=True)}
    examples = pd.concat([frame for _, frame in done], ignore_index=True)
    meta, matrix = build_rank_matrix(
        examples, moments, users, genres, n_users, n_items, extra={"dataset": _dataset_name(paths)}
    )
    io.write_parquet(matrix, paths.rank_examples)
    meta.save(paths.feature_meta)
    user_table, item_table = serving_tables(
        meta,
        entity_features(offline_events, genres, n_users, n_items),
        users,
        genres,
        np.sort(users[USERID].to_numpy()),
        catalogue,
    )
    io.write_parquet(user_table, paths.user_features)
    io.write_parquet(item_table, paths.item_features)
    moment_of = matrix[MOMENT].to_numpy()
    return dict(
        features=meta.n_features,
        request_features=len(meta.of_owner("request")),
        examples_train=int((moment_of == TRAIN_MOMENT).sum()),
        examples_val=int((moment_of == VAL_MOMENT).sum()),
        positives_train=int(matrix[LABEL][moment_of == TRAIN_MOMENT].sum()),
        positives_val=int(matrix[LABEL][moment_of == VAL_MOMENT].sum()),
        users=len(user_table),
        items=len(item_table),
    )


def _xy(df: pd.DataFrame, columns: list[str], dtype):
    import torch

    return (
        torch.from_numpy(df[columns].to_numpy(dtype, copy=True)),
        torch.from_numpy(df[LABEL].to_numpy(np.float32, copy=True)),
    )


def _early_stop(make_model, x, y, is_val: np.ndarray, configs: list) -> dict:
    """Stage 1 of a seed-protocol model: for each TrainConfig of ``configs``, seed, build, fit on the rows
    of (``x``, ``y``) outside the validation slice ``is_val`` (early stopping watches that slice); keep the
    config with the best validation AUC (a tie keeps the earlier). Returns its config, weights and result,
    and every config tried."""
    import torch

    from mlrec.offline.train import fit

    val = torch.from_numpy(np.asarray(is_val, dtype=bool))
    x_fit, y_fit, x_val, y_val = x[~val], y[~val], x[val], y[val]
    runs = []
    for c in configs:
        torch.manual_seed(c.seed)
        model = make_model()
        runs.append((c, model, fit(model, x_fit, y_fit, x_val, y_val, c)))
    cfg, model, result = max(runs, key=lambda run: run[2].best_val_auc)  # max keeps the first of equals
    tried = [
        dict(lr=c.lr, weight_decay=c.weight_decay, patience=c.patience, val_auc=round(r.best_val_auc, 4))
        for c, _, r in runs
    ]
    return dict(cfg=cfg, state_dict=model.state_dict(), result=result, tried=tried)


def _refit_and_test(make_model, name: str, checkpoint, train: tuple, test: tuple, stage1: dict, extra=None):
    """Stage 2: (``cfg.refit``) a fresh model on all train rows (``train`` = (x, y)) for the epoch count
    stage 1 chose; score ``test`` = (x, y) once; save the checkpoint. Returns the step's fields."""
    import torch

    from mlrec.models import save_checkpoint
    from mlrec.offline.train import fit_epochs, predict_logits, roc_auc

    cfg, result, tried = stage1["cfg"], stage1["result"], stage1["tried"]
    x_test, y_test = test
    model = make_model()
    model.load_state_dict(stage1["state_dict"])
    refit: dict = {}
    if cfg.refit:
        refit["test_auc_before_refit"] = round(roc_auc(y_test.numpy(), predict_logits(model, x_test)), 4)
        torch.manual_seed(cfg.seed)
        model = make_model()
        x_all, y_all = train
        refit["refit_seconds"] = fit_epochs(model, x_all, y_all, result.best_epoch, cfg)
        refit["refit_epochs"] = result.best_epoch
    test_auc = roc_auc(y_test.numpy(), predict_logits(model, x_test))
    save_checkpoint(
        checkpoint, model, name, model.hparams, config=asdict(cfg), extra={**(extra or {}), "test_auc": test_auc}
    )
    return dict(
        epochs=len(result.history),
        best_epoch=result.best_epoch,
        val_auc=round(result.best_val_auc, 4),
        test_auc=round(test_auc, 4),
        **refit,
        **({"lr": cfg.lr, "weight_decay": cfg.weight_decay, "tried": tried} if len(tried) > 1 else {}),
        history=[asdict(h) for h in result.history],
    )


def _seed_mf_job(paths: Paths, offline: pd.DataFrame, n_users: int, n_items: int, cfg) -> dict:
    """The seed protocol's MF: fit, refit, test AUC; writes its checkpoint. Runs in a worker."""
    from mlrec.models import MatrixFactorization
    from mlrec.offline.features import validation_mask

    train, test = offline[offline[ISTEST] == 0], offline[offline[ISTEST] == 1]
    columns = [USERID, ITEMID]

    def make_model():
        return MatrixFactorization(n_users, n_items)

    x, y = _xy(train, columns, np.int64)
    stage1 = _early_stop(make_model, x, y, validation_mask(train), [cfg])
    return _refit_and_test(make_model, "mf", paths.recall_model, (x, y), _xy(test, columns, np.int64), stage1)


def run_vector_recall(paths: Paths, cfg=None) -> dict:
    """VECTOR_RECALL_SCRIPT: the served retrieval vectors, and the seed's MF for the seed protocol.

    The seed's 16-dim MF on (userid, itemid) is trained as before (early-stopped on a time-ordered
    validation slice of train, refit, scored on test: the seed protocol's MF AUC). The vectors saved
    for Redis / Elasticsearch are the 16-dim ALS of :mod:`mlrec.offline.retrieval`, chosen on
    validation recall@200: retrieval is scored on which items a user picks next, not on rated items."""
    from mlrec.core.parallel import run_jobs
    from mlrec.core.settings import Settings
    from mlrec.data.movielens import load_movies, load_users
    from mlrec.offline.retrieval import train_retrieval
    from mlrec.offline.train import TrainConfig

    cfg = cfg or TrainConfig()
    with timed() as t:
        raw = _raw_dir(paths)
        n_users = int(load_users(raw)[USERID].max()) + 1
        n_items = int(load_movies(raw)[ITEMID].max()) + 1
        offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[USERID, ITEMID, LABEL, TS, ISTEST])
        # both single-threaded (TrainConfig.threads, als_factors): side by side on two cores
        jobs: list = [
            (_seed_mf_job, (paths, offline, n_users, n_items, cfg)),
            (train_retrieval, (offline, n_users, n_items)),
        ]
        fields, retrieval = run_jobs(jobs, Settings.from_env().offline_workers)
        io.write_npy(retrieval.user_vectors, paths.user_vector)
        io.write_npy(retrieval.item_vectors, paths.item_vector)
        io.write_json(paths.retrieval_params, retrieval.chosen)
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


# The served ranker reads ~50 dense features (channel ranks and scores among them) and its MLP also reads
# the side fields' embeddings: it needs more room than the seed's 4 units over 36 genre counts.
# Measured on ml-100k validation (NDCG@10 within the candidates): 0.254 with the seed's MLP input, 0.270 so.
# Dropout, mean NDCG@10 of single (64, 32) models over seeds 123-127: 0 -> 0.261 (one seed fell to 0.240),
# 0.1 -> 0.265, 0.2 -> 0.262, 0.3 -> 0.259. MLP (32, 16) instead of (64, 32): the mean of 3 seeds 0.273
# vs 0.274, and the fused ensemble (DeepFMEnsemble.fused) scores 310 rows in 0.55 instead of 0.78 ms.
SERVED_RANKER: dict = {"mlp_dims": (32, 16), "dropout": 0.1, "deep_embeddings": True}
# The served ranker is the mean of this many DeepFMs trained from seeds cfg.seed, cfg.seed + 1, ...
# (mlrec.models.DeepFMEnsemble). ml-100k validation NDCG@10 within the candidates, MLP (32, 16), dropout
# 0.1: single seeds 0.254-0.266 (mean 0.263), the mean of 3 seeds 0.273, of 5 0.275; each member costs one
# model's training, and serving stays one graph (exported fused).
SERVED_MEMBERS = 3
# Each member trains on at most this many rows per moment: every positive, and negatives sampled
# uniformly (mlrec.offline.candidates.cap_negatives). ml-100k's moments (~111k and ~140k rows) stay
# whole. Synthetic 1M (~935k rows per moment, 2 % positives), three members, early stopping only:
# all rows val NDCG@10 within the candidates 0.2239 in 123 s; ~330k rows 0.2207 in 46 s; ~185k rows
# 0.2224 in 34 s (the early-stopping slice capped too: predicting all 958k val rows every epoch cost
# as much as the epoch). A fixed fraction of negatives instead hurt ml-100k (0.272 -> 0.23): too few
# rows there made early stopping end one member after 2 epochs.
SERVED_MAX_ROWS = 200_000
# The seed protocol's DeepFM tries these settings (each only where the command line's TrainConfig keeps
# the default) and keeps the one with the better validation AUC (each user's latest 10 % of train
# rows). Measured (val AUC, epochs to the best): ml-100k, the TrainConfig defaults (lr 1e-3, weight
# decay 1e-6, patience 2) 0.768; weight decay 1e-4 0.794 at lr 1e-3 (99 epochs), 3e-3 (34) or 1e-2
# (14); lr 1e-2 with weight decay 1e-5 0.766. Synthetic 1M: the defaults 0.8115 after 20 epochs and
# 47 s; lr 1e-2 with weight decay 1e-5 0.8143 (4 epochs, 21 s), with 1e-4 0.761. One setting did not
# fit both, so the weight decay is chosen on each run's own validation slice; lr 1e-2 and patience 5
# serve both and converge in a few epochs.
SEED_PROTOCOL_GRID: tuple[dict, ...] = (
    {"lr": 1e-2, "weight_decay": 1e-5, "patience": 5},
    {"lr": 1e-2, "weight_decay": 1e-4, "patience": 5},
)


def seed_protocol_configs(cfg) -> list:
    """The settings the seed protocol tries: ``cfg`` with each of :data:`SEED_PROTOCOL_GRID` wherever
    ``cfg`` keeps the :class:`TrainConfig` default (settings given on the command line win), without
    repeats; in grid order."""
    from mlrec.offline.train import TrainConfig

    defaults = TrainConfig()
    configs: list = []
    for setting in SEED_PROTOCOL_GRID:
        chosen = {k: v for k, v in setting.items() if getattr(cfg, k) == getattr(defaults, k)}
        c = replace(cfg, **chosen)
        if c not in configs:
            configs.append(c)
    return configs


def _within_candidates_ndcg(frame: pd.DataFrame, scores: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over users of the candidates ordered by ``scores`` (relevant = the positive rows)."""
    from mlrec.evaluation.metrics import ndcg_at_k

    users = frame[USERID].to_numpy()
    order = np.lexsort((-scores, users))
    users, labels = users[order], frame[LABEL].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    rank = np.arange(len(users)) - np.repeat(starts, np.diff(np.r_[starts, len(users)]))
    hits = np.zeros((len(starts), k), dtype=bool)
    top = rank < k
    hits[np.searchsorted(starts, np.flatnonzero(top), side="right") - 1, rank[top]] = labels[top] == 1
    n_relevant = np.add.reduceat(labels, starts)
    has = n_relevant > 0
    return float(ndcg_at_k(hits[has], n_relevant[has], k).mean())


def _seed_protocol_tables(paths: Paths):
    """(the seed meta, (x, y, is_val) of the train rows, (x, y) of the test rows) as tensors over matrices
    read row group by row group (:func:`mlrec.core.io.read_matrix`): at ML-25M's size the train matrix
    alone is 4.4 GB, and a DataFrame on the way would hold it two more times."""
    import torch

    from mlrec.offline.feature_meta import FeatureMeta

    seed_meta = FeatureMeta.load(paths.seed_feature_meta)
    names = seed_meta.names

    def read(path: Path, heads: list[str]):
        x = torch.from_numpy(io.read_matrix(path, FEATURES_SCRIPT, names, np.float32))
        head = io.read_matrix(path, FEATURES_SCRIPT, heads, np.float32)
        return x, torch.from_numpy(np.ascontiguousarray(head[:, 0])), head[:, 1:]

    x_train, y_train, isval = read(paths.train_features, [LABEL, ISVAL])
    x_test, y_test, _ = read(paths.test_features, [LABEL])
    return seed_meta, (x_train, y_train, isval[:, 0] == 1), (x_test, y_test)


def _seed_protocol_job(paths: Paths, cfg) -> dict:
    """The seed-protocol DeepFM, stage 1: every setting of :func:`seed_protocol_configs` early-stopped
    on the validation slice, the best kept. Runs in a worker; :func:`_seed_protocol_refit_job` follows."""
    from mlrec.models import DeepFM

    with timed() as t:
        seed_meta, (x, y, is_val), _ = _seed_protocol_tables(paths)
        stage1 = _early_stop(lambda: DeepFM.from_meta(seed_meta), x, y, is_val, seed_protocol_configs(cfg))
    return {**stage1, "seconds": t["seconds"]}


def _seed_protocol_refit_job(paths: Paths, stage1: dict) -> dict:
    """The seed-protocol DeepFM, stage 2: refit, test AUC; writes ``deepfm_seed.pt``. Runs in a worker."""
    from mlrec.models import DeepFM

    with timed() as t:
        seed_meta, (x, y, _), test = _seed_protocol_tables(paths)
        fields = _refit_and_test(
            lambda: DeepFM.from_meta(seed_meta),
            "deepfm",
            paths.seed_rank_model,
            (x, y),
            test,
            stage1,
            extra={"feature_names": seed_meta.names},
        )
    return {**fields, "features": seed_meta.n_features, "seconds": round(stage1["seconds"] + t["seconds"], 3)}


def _served_examples(paths: Paths):
    """(the served feature meta, the candidate examples of both moments)."""
    from mlrec.offline.feature_meta import FeatureMeta

    return FeatureMeta.load(paths.feature_meta), io.read_parquet(paths.rank_examples, FEATURES_SCRIPT)


def _member_rows(examples: pd.DataFrame, seed: int, max_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The rows a member trains on (train moment) and early-stops on (val moment), each moment capped
    at ``max_rows`` (default :data:`SERVED_MAX_ROWS`) by :func:`~mlrec.offline.candidates.cap_negatives`,
    sampled from the member's own seed (so the members also see different negatives)."""
    from mlrec.offline.candidates import MOMENT, TRAIN_MOMENT, VAL_MOMENT, cap_negatives

    max_rows = SERVED_MAX_ROWS if max_rows is None else max_rows
    moment, label = examples[MOMENT].to_numpy(), examples[LABEL].to_numpy()
    capped = []
    for key in (TRAIN_MOMENT, VAL_MOMENT):
        rows = np.flatnonzero(moment == key)
        capped.append(rows[cap_negatives(label[rows], max_rows, seed=[seed, key])])
    return capped[0], capped[1]


def _served_member_job(paths: Paths, cfg, member: int, max_rows: int | None = None) -> dict:
    """One member of the served ranker, stage 1, seeded ``cfg.seed + member``: trained on the train
    moment, early-stopped on the val moment (rows: :func:`_member_rows`). Returns its weights, its
    result, its logits on every val-moment row, its row counts. Runs in a worker; with ``cfg.refit``,
    :func:`_served_member_refit_job` follows."""
    import torch

    from mlrec.models import DeepFM
    from mlrec.offline.candidates import MOMENT, VAL_MOMENT
    from mlrec.offline.train import fit, predict_logits

    cfg = replace(cfg, seed=cfg.seed + member)
    meta, examples = _served_examples(paths)
    fit_rows, es_rows = _member_rows(examples, cfg.seed, max_rows)
    x_fit, y_fit = _xy(examples.iloc[fit_rows], meta.names, np.float32)
    x_es, y_es = _xy(examples.iloc[es_rows], meta.names, np.float32)
    torch.manual_seed(cfg.seed)
    model = DeepFM.from_meta(meta, **SERVED_RANKER)
    result = fit(model, x_fit, y_fit, x_es, y_es, cfg)
    val = examples.loc[examples[MOMENT].to_numpy() == VAL_MOMENT]
    return dict(
        state_dict=model.state_dict(),
        result=result,
        val_logits=predict_logits(model, _xy(val, meta.names, np.float32)[0]),
        rows=dict(fit=len(fit_rows), early_stopping=len(es_rows)),
    )


def _served_member_refit_job(paths: Paths, cfg, member: int, epochs: int, max_rows: int | None = None) -> dict:
    """One member, stage 2: a fresh model (same seed) trained on the rows of both moments that stage 1
    used, for the ``epochs`` its early stopping chose. Returns its weights and seconds. Runs in a worker."""
    import torch

    from mlrec.models import DeepFM
    from mlrec.offline.train import fit_epochs

    cfg = replace(cfg, seed=cfg.seed + member)
    meta, examples = _served_examples(paths)
    rows = np.concatenate(_member_rows(examples, cfg.seed, max_rows))
    torch.manual_seed(cfg.seed)
    model = DeepFM.from_meta(meta, **SERVED_RANKER)
    x, y = _xy(examples.iloc[rows], meta.names, np.float32)
    seconds = fit_epochs(model, x, y, epochs, cfg)
    return dict(state_dict=model.state_dict(), refit_seconds=seconds, refit_rows=len(rows))


def run_rank_train(paths: Paths, cfg=None) -> dict:
    """RANK_SCRIPT: the seed-protocol DeepFM (its test AUC is the seed's number) and the served ranker.

    The served ranker is the mean of :data:`SERVED_MEMBERS` DeepFMs on the served meta, each trained on
    the candidate examples of the train moment, early-stopped on the val moment's AUC, then
    (``cfg.refit``) refit on both moments for its chosen number of epochs. The ensemble's validation
    NDCG@10 within the candidates is reported beside the union's recall order on the same rows: the
    ranker must add to its own recall order. The models train side by side in
    :attr:`~mlrec.core.settings.Settings.offline_workers` processes (:func:`mlrec.core.parallel.run_jobs`)."""
    from mlrec.core.parallel import run_jobs
    from mlrec.core.settings import Settings
    from mlrec.models import DeepFM, DeepFMEnsemble, save_checkpoint
    from mlrec.offline.candidates import MOMENT, RECALL_POS, VAL_MOMENT
    from mlrec.offline.train import TrainConfig, roc_auc

    cfg = cfg or TrainConfig()
    workers = Settings.from_env().offline_workers
    with timed() as t:
        # stage 1 (early stopping) of the seed-protocol DeepFM and of every member; each one's refit
        # is queued the moment its epoch count is known (run_jobs' ``then``)
        jobs: list = [(_seed_protocol_job, (paths, cfg))]
        jobs += [(_served_member_job, (paths, cfg, member)) for member in range(SERVED_MEMBERS)]
        stage1: dict[int, dict] = {}

        def then(i: int, out: dict):
            stage1[i] = out
            if i == 0:
                return _seed_protocol_refit_job, (paths, out)
            return (_served_member_refit_job, (paths, cfg, i - 1, out["result"].best_epoch)) if cfg.refit else None

        seed_fields, *refits = run_jobs(jobs, workers, then)
        members = [{**stage1[i + 1], **refit} for i, refit in enumerate(refits)]

        meta, examples = _served_examples(paths)
        models = []
        for member in members:
            model = DeepFM.from_meta(meta, **SERVED_RANKER)
            model.load_state_dict(member["state_dict"])
            models.append(model)
        ensemble = DeepFMEnsemble.of(models)
        val = examples.loc[examples[MOMENT].to_numpy() == VAL_MOMENT].reset_index(drop=True)
        val_logits = np.mean([m["val_logits"] for m in members], axis=0)
        val_auc = roc_auc(val[LABEL].to_numpy(), val_logits)
        ndcg_ranker = _within_candidates_ndcg(val, val_logits)
        ndcg_recall = _within_candidates_ndcg(val, -val[RECALL_POS].to_numpy(np.float64))
        save_checkpoint(
            paths.rank_model,
            ensemble,
            "deepfm_ensemble",
            ensemble.hparams,
            config=asdict(cfg),
            extra={"feature_names": meta.names, "val_auc": val_auc},
        )
    results = [m["result"] for m in members]
    fields = dict(
        seed_protocol=seed_fields,
        features=meta.n_features,
        members=len(members),
        epochs=[len(r.history) for r in results],
        best_epoch=[r.best_epoch for r in results],
        val_auc=round(val_auc, 4),
        val_auc_members=[round(r.best_val_auc, 4) for r in results],
        val_ndcg10_ranker=round(ndcg_ranker, 4),
        val_ndcg10_members=[round(_within_candidates_ndcg(val, m["val_logits"]), 4) for m in members],
        val_ndcg10_recall_order=round(ndcg_recall, 4),
        **({"refit_seconds": [m["refit_seconds"] for m in members]} if cfg.refit else {}),
        rows={**members[0]["rows"], "refit": members[0].get("refit_rows", 0)},  # equal for every member
        history=[[asdict(h) for h in r.history] for r in results],
        offline_workers=workers,
        seconds=t["seconds"],
    )
    # the seed protocol's AUCs get a line of their own: the step's line prints scalars only
    summary(f"{step_name(RANK_SCRIPT)}: seed protocol", None, **seed_fields)
    summary(step_name(RANK_SCRIPT), paths.metrics, **fields)
    return fields
