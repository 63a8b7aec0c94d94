"""A seeded MovieLens-like dataset at any scale, with structure a recommender can learn.

Why synthetic: ML-1M is not reachable offline and ML-100K is small, but the pipeline must be
benchmarked at 1M and 10M ratings. The generator mimics ML-1M's shape and plants known signal:

- sizes: ``n_users = n_ratings / 165`` (ML-1M: 6040 users, 1M ratings); items grow sub-linearly,
  ``3700 * (n_ratings / 1M) ** 0.5``; or a published release's exact sizes (:data:`SHAPES`: MovieLens-25M's
  162,541 users, 62,423 items and 25,000,095 ratings), for benchmarks at that scale without the download;
- items: 1-3 genres drawn with ML-1M's genre frequencies, a power-law popularity and a latent
  quality (mildly correlated with popularity);
- users: gender/age/occupation with ML-1M's marginals, and a genre taste drawn from a Dirichlet
  whose prior is tilted by gender and age (so demographics carry signal too);
- activity: at least 20 ratings per user with a heavy (log-normal) tail, summing exactly to
  ``n_ratings``; each user's items are distinct, picked either from their favourite genres or by
  global popularity;
- ratings 1..5 from ``taste match + item quality + user bias + noise``, cut at ML-1M's rating
  quantiles, so ~57 % are > 3 and users click more on their top genre than on others;
- timestamps strictly increase per user: bursts of ratings seconds apart, sessions days apart.

Everything is vectorised numpy over chunks of draws, so 10M ratings take seconds, not minutes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core.constants import (
    AGE,
    AGE_BUCKETS,
    GENDER,
    GENRE_NAMES,
    GENRES,
    ITEMID,
    OCCUPATION,
    RATING,
    SEED,
    TITLE,
    TS,
    USERID,
    ZIPCODE,
)
from mlrec.core.log import kv
from mlrec.data.errors import DataError
from mlrec.data.movielens import GENRE_SEP, write_movielens

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when the output for a given (n_ratings, seed) changes: prepared folders rebuild
RATINGS_PER_USER = 165  # ML-1M: 1,000,209 / 6,040
ML1M_ITEMS = 3700
ITEM_EXPONENT = 0.5
MIN_ITEMS = 600  # small scales still need room for ~165 distinct items per user
MIN_RATINGS_PER_USER = 20
MIN_N_RATINGS = 2_000
MAX_USER_SHARE_OF_ITEMS = 0.5  # the heaviest user rates at most this share of the catalogue
GENRES_18 = GENRE_NAMES[1:]  # real genres; code = index + 1
# ML-1M movie counts per genre (Action .. Western), the prior for item genres and user tastes
GENRE_FREQ = np.array(
    [503, 283, 105, 251, 1200, 211, 127, 1603, 68, 44, 343, 114, 106, 471, 276, 492, 143, 68], dtype=np.float64
)
GENRE_COUNT_P = np.array([0.5, 0.35, 0.15])  # P(item has 1, 2, 3 genres)
# ML-1M demographics
P_MALE = 0.717
AGE_P = np.array([222, 1103, 2096, 1193, 550, 496, 380], dtype=np.float64)
OCCUPATION_P = np.array(
    [711, 528, 267, 173, 759, 112, 236, 679, 17, 92, 195, 129, 388, 142, 302, 144, 241, 502, 70, 72, 281],
    dtype=np.float64,
)
# rating model
TASTE_CONCENTRATION = 4.0  # Dirichlet total: lower = pickier users
P_TASTE_EXPOSURE = 0.6  # share of a user's items picked from their favourite genres
POPULARITY_EXPONENT = 1.2
POPULARITY_OFFSET = 60.0  # Zipf rank offset: flattens the head so no item is rated by nearly everyone
TASTE_WEIGHT, QUALITY_SD, USER_BIAS_SD, NOISE_SD = 2.0, 0.6, 0.4, 0.9
RATING_CDF = np.array([0.056, 0.164, 0.425, 0.774])  # ML-1M share of ratings <= 1, 2, 3, 4
# time: ML-1M spans 2000-04-25 .. 2003-02-28
T_START, T_END = 956_703_932, 1_046_454_590
P_SESSION_BREAK, BURST_MEAN_S, BREAK_MEAN_S = 0.07, 40.0, 5 * 86_400.0
CHUNK = 1 << 20


def _tilts() -> tuple[np.ndarray, np.ndarray]:
    """Multiplicative genre-taste tilts by gender (F, M) and age bucket: the demographic signal."""
    idx = {g: i for i, g in enumerate(GENRES_18)}
    gender = np.ones((2, 18))
    for g, f in {
        "Romance": 2.0,
        "Drama": 1.3,
        "Children's": 1.5,
        "Musical": 1.6,
        "Action": 0.6,
        "Sci-Fi": 0.6,
        "War": 0.6,
        "Western": 0.6,
        "Horror": 0.8,
    }.items():
        gender[0, idx[g]] = f
    for g, f in {"Action": 1.3, "Sci-Fi": 1.3, "War": 1.3, "Western": 1.3, "Thriller": 1.2, "Romance": 0.8}.items():
        gender[1, idx[g]] = f
    age = np.ones((len(AGE_BUCKETS), 18))
    for g in ("Animation", "Children's", "Comedy", "Horror"):
        age[:2, idx[g]] = 1.5
    for g in ("Drama", "War", "Western", "Film-Noir", "Documentary"):
        age[4:, idx[g]] = 1.4
    return gender, age


@dataclass(frozen=True)
class Shape:
    """A published release's sizes, for a synthetic dataset of the same shape."""

    n_ratings: int
    users: int
    items: int


# MovieLens-25M (grouplens.org, README of ml-25m): 25,000,095 ratings by 162,541 users of 62,423 movies
SHAPES = {"ml-25m": Shape(25_000_095, 162_541, 62_423)}


@dataclass(frozen=True)
class SyntheticSpec:
    n_ratings: int = 1_000_000
    seed: int = SEED
    users: int | None = None  # None: n_ratings / RATINGS_PER_USER, as ML-1M
    items: int | None = None  # None: grows with sqrt(n_ratings) from ML-1M's 3,700

    def __post_init__(self) -> None:
        if self.n_ratings < MIN_N_RATINGS:
            raise DataError(
                f"synthetic scale n_ratings={self.n_ratings} is too small", f"use --scale >= {MIN_N_RATINGS}"
            )
        if self.n_ratings < MIN_RATINGS_PER_USER * self.n_users:
            raise DataError(
                f"synthetic shape: {self.n_users} users cannot each have {MIN_RATINGS_PER_USER} of "
                f"{self.n_ratings} ratings",
                "give fewer users or more ratings",
            )

    @classmethod
    def of_shape(cls, name: str, seed: int = SEED) -> SyntheticSpec:
        """The spec of a published release's shape (:data:`SHAPES`)."""
        if name not in SHAPES:
            raise DataError(f"unknown synthetic shape {name!r}", f"choose one of {', '.join(SHAPES)}")
        shape = SHAPES[name]
        return cls(shape.n_ratings, seed, shape.users, shape.items)

    @property
    def n_users(self) -> int:
        return self.users or max(1, round(self.n_ratings / RATINGS_PER_USER))

    @property
    def n_items(self) -> int:
        return self.items or max(MIN_ITEMS, round(ML1M_ITEMS * (self.n_ratings / 1e6) ** ITEM_EXPONENT))

    @property
    def max_per_user(self) -> int:
        return max(MIN_RATINGS_PER_USER, int(self.n_items * MAX_USER_SHARE_OF_ITEMS))


@dataclass
class _World:
    """The latent structure behind the observed files."""

    item_genres: np.ndarray  # (n_items, 3) genre index 0..17, -1 = none
    item_pop: np.ndarray  # (n_items,) sampling weight
    item_quality: np.ndarray  # (n_items,)
    taste: np.ndarray  # (n_users, 18) float32, rows sum to 1
    user_bias: np.ndarray  # (n_users,)


def _items(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    n = spec.n_items
    n_genres = rng.choice(3, size=n, p=GENRE_COUNT_P) + 1
    genres = rng.choice(18, size=(n, 3), p=GENRE_FREQ / GENRE_FREQ.sum())
    genres[np.arange(3)[None, :] >= n_genres[:, None]] = -1
    genres[:, 1] = np.where(genres[:, 1] == genres[:, 0], -1, genres[:, 1])
    genres[:, 2] = np.where((genres[:, 2] == genres[:, 0]) | (genres[:, 2] == genres[:, 1]), -1, genres[:, 2])
    genres.sort(axis=1)  # -1 (none) first, then ascending = alphabetical, as ML-1M lists genres
    pop = (rng.permutation(n) + POPULARITY_OFFSET) ** -POPULARITY_EXPONENT
    log_pop = np.log(pop)
    quality = rng.normal(0, QUALITY_SD, n) + 0.3 * QUALITY_SD * (log_pop - log_pop.mean()) / log_pop.std()

    names = np.array([*GENRES_18, ""], dtype=object)
    parts = [pd.Series(names[np.where(genres[:, k] < 0, 18, genres[:, k])]) for k in range(3)]
    joined = (parts[0] + GENRE_SEP + parts[1] + GENRE_SEP + parts[2]).str.strip(GENRE_SEP)  # "" only leads
    ids = np.arange(1, n + 1, dtype=np.int32)
    years = rng.integers(1919, 2001, size=n)
    movies = pd.DataFrame(
        {ITEMID: ids, TITLE: [f"Synthetic Movie {i} ({y})" for i, y in zip(ids, years, strict=True)], GENRES: joined}
    )
    return movies, genres.astype(np.int8), pop, quality


def _users(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    n = spec.n_users
    male = rng.random(n) < P_MALE
    age_idx = rng.choice(len(AGE_BUCKETS), size=n, p=AGE_P / AGE_P.sum())
    occupation = rng.choice(len(OCCUPATION_P), size=n, p=OCCUPATION_P / OCCUPATION_P.sum())
    occupation = np.where((age_idx == 0) & (rng.random(n) < 0.6), 10, occupation)  # most under-18s: K-12
    gender_tilt, age_tilt = _tilts()
    prior = (GENRE_FREQ / GENRE_FREQ.sum())[None, :] * gender_tilt[male.astype(int)] * age_tilt[age_idx]
    prior *= TASTE_CONCENTRATION / prior.sum(axis=1, keepdims=True)
    taste = rng.gamma(prior).astype(np.float32)  # Dirichlet via normalised gammas, one prior per user
    taste /= np.maximum(taste.sum(axis=1, keepdims=True), 1e-12)
    users = pd.DataFrame(
        {
            USERID: np.arange(1, n + 1, dtype=np.int32),
            GENDER: np.where(male, "M", "F"),
            AGE: np.asarray(AGE_BUCKETS, dtype=np.int8)[age_idx],
            OCCUPATION: occupation.astype(np.int8),
            ZIPCODE: pd.Series(rng.integers(0, 100_000, size=n)).astype(str).str.zfill(5),
        }
    )
    return users, taste


def _activity(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: >= 20, log-normal tail, capped, summing exactly to ``n_ratings``."""
    n, total, cap = spec.n_users, spec.n_ratings, spec.max_per_user
    if total > n * cap:
        raise DataError(f"synthetic scale n_ratings={total} needs more items than {spec.n_items}")
    extra = rng.lognormal(0.0, 1.1, n)
    counts = MIN_RATINGS_PER_USER + np.floor(extra / extra.sum() * (total - MIN_RATINGS_PER_USER * n)).astype(np.int64)
    counts = np.minimum(counts, cap)
    while (left := total - counts.sum()) > 0:  # hand out the remainder (rounding, caps) to users with room
        room = np.flatnonzero(counts < cap)
        pick = rng.choice(room, size=min(left, room.size), replace=False)
        counts[pick] += 1
    return counts


class _Sampler:
    """Draws one item per entry of a user array, from per-user mixtures, in two ``searchsorted`` calls.

    Each user picks a *list* (one of the 18 genres with probability ``p_taste * taste``, or the
    whole catalogue with ``1 - p_taste``), then an item from that list by popularity. Both
    choices use one flattened CDF each: row ``k`` of a CDF is stored as ``k + cumulative share``,
    so ``searchsorted(flat, k + uniform)`` samples row ``k`` for millions of draws at once.
    """

    def __init__(self, taste: np.ndarray, item_genres: np.ndarray, weights: np.ndarray, p_taste: float):
        n_lists = 19  # 18 genres + the whole catalogue
        lists = [np.flatnonzero((item_genres == g).any(axis=1)) for g in range(18)]
        lists.append(np.arange(item_genres.shape[0]))
        empty = np.array([ids.size == 0 for ids in lists[:18]])
        mix = np.hstack([taste * p_taste, np.full((taste.shape[0], 1), 1.0 - p_taste)]).astype(np.float64)
        mix[:, :18][:, empty] = 0.0  # a genre with no items cannot be picked
        mix /= mix.sum(axis=1, keepdims=True)
        self.n_lists = n_lists
        self.user_cdf = (np.cumsum(mix, axis=1) + np.arange(taste.shape[0])[:, None]).ravel()
        cdfs, self.start, self.end = [], np.zeros(n_lists, np.int64), np.zeros(n_lists, np.int64)
        offset = 0
        for k, ids in enumerate(lists):
            w = np.cumsum(weights[ids])
            cdfs.append(k + w / w[-1] if ids.size else w)
            self.start[k], self.end[k] = offset, offset + ids.size
            offset += ids.size
        self.item_cdf = np.concatenate(cdfs)
        self.item_ids = np.concatenate(lists)

    def draw(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        items = np.empty(users.size, dtype=np.int64)
        for lo in range(0, users.size, CHUNK):
            u = users[lo : lo + CHUNK].astype(np.int64)
            pick = np.searchsorted(self.user_cdf, u + rng.random(u.size), side="right") - u * self.n_lists
            pick = np.clip(pick, 0, self.n_lists - 1)
            pos = np.searchsorted(self.item_cdf, pick + rng.random(u.size), side="right")
            items[lo : lo + u.size] = self.item_ids[np.clip(pos, self.start[pick], self.end[pick] - 1)]
        return items


def _fresh(keys: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Mask of keys that are neither in the sorted ``seen`` nor repeats of an earlier key in ``keys``."""
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    first = np.r_[True, ks[1:] != ks[:-1]]
    if seen.size:
        pos = np.minimum(np.searchsorted(seen, ks), seen.size - 1)
        first &= seen[pos] != ks
    fresh = np.empty(keys.size, dtype=bool)
    fresh[order] = first
    return fresh


def _pairs(
    spec: SyntheticSpec, world: _World, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs, ``counts[u]`` per user: oversample, drop repeats, top up the short."""
    n_items = spec.n_items
    by_taste = _Sampler(world.taste, world.item_genres, world.item_pop, P_TASTE_EXPOSURE)
    uniform = _Sampler(world.taste, world.item_genres, np.ones(n_items), 0.0)
    need = counts.astype(np.int64)
    kept_users, kept_items, seen = [], [], np.empty(0, dtype=np.int64)
    for round_ in range(12):
        # heavy users exhaust the popular items: after a few rounds, top up uniformly
        sampler = by_taste if round_ < 4 else uniform
        users = np.repeat(np.arange(spec.n_users), np.ceil(need * 1.3 * 2**round_).astype(np.int64))
        items = sampler.draw(users, rng)
        keys = users * n_items + items
        fresh = _fresh(keys, seen)
        users, items, keys = users[fresh], items[fresh], keys[fresh]
        rank = np.arange(users.size) - np.searchsorted(users, users, side="left")  # users stay sorted
        keep = rank < need[users]
        kept_users.append(users[keep])
        kept_items.append(items[keep])
        need -= np.bincount(users[keep], minlength=spec.n_users)
        if need.sum() == 0:
            break
        seen = np.sort(np.concatenate([seen, keys[keep]]))
    else:
        raise DataError(f"synthetic generator could not draw {spec.n_ratings} distinct pairs (bug)")
    del seen
    users = np.concatenate(kept_users)
    items = np.concatenate(kept_items).astype(np.int32)
    # shuffle within each user (top-ups would otherwise always come last in time)
    order = np.argsort((users << 32) | rng.integers(0, 1 << 32, users.size, dtype=np.int64))
    return users[order].astype(np.int32), items[order]


def _ratings(users: np.ndarray, items: np.ndarray, world: _World, rng: np.random.Generator) -> np.ndarray:
    """1..5 from how well the item's genres match the user's taste, plus quality, bias and noise."""
    taste = world.taste / np.maximum(world.taste.max(axis=1, keepdims=True), 1e-12)
    taste = np.hstack([taste, np.zeros((taste.shape[0], 1), dtype=np.float32)])  # column 18: "no genre"
    score = np.empty(users.size, dtype=np.float32)
    for lo in range(0, users.size, CHUNK):
        u, i = users[lo : lo + CHUNK], items[lo : lo + CHUNK]
        g = world.item_genres[i].astype(np.int64)
        n_genres = np.maximum((g >= 0).sum(axis=1), 1)
        match = taste[u[:, None], np.where(g < 0, 18, g)].sum(axis=1) / n_genres
        score[lo : lo + u.size] = (
            TASTE_WEIGHT * match + world.item_quality[i] + world.user_bias[u] + rng.normal(0, NOISE_SD, u.size)
        )
    sample = score if score.size <= CHUNK else rng.choice(score, CHUNK, replace=False)
    cuts = np.quantile(sample, RATING_CDF)
    return (np.searchsorted(cuts, score, side="right") + 1).astype(np.int8)


def _timestamps(users: np.ndarray, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Per user: a start time, then gaps of seconds (bursts) or days (new session), so strictly increasing."""
    start = T_START + (rng.beta(1.0, 3.0, n_users) * 0.9 * (T_END - T_START)).astype(np.int64)
    gaps = np.empty(users.size, dtype=np.int64)
    for lo in range(0, users.size, CHUNK):
        m = min(CHUNK, users.size - lo)
        mean = np.where(rng.random(m) < P_SESSION_BREAK, BREAK_MEAN_S, BURST_MEAN_S)
        gaps[lo : lo + m] = 1 + rng.exponential(mean).astype(np.int64)
    first = np.r_[True, users[1:] != users[:-1]]  # users are sorted
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    group_start = np.maximum.accumulate(np.where(first, np.arange(users.size), 0))
    return start[users] + elapsed - elapsed[group_start]


def generate(spec: SyntheticSpec) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(users, movies, ratings) in canonical columns; the same spec always gives the same data."""
    rng = np.random.default_rng(spec.seed)
    movies, item_genres, pop, quality = _items(spec, rng)
    users, taste = _users(spec, rng)
    world = _World(item_genres, pop, quality, taste, rng.normal(0, USER_BIAS_SD, spec.n_users).astype(np.float32))
    counts = _activity(spec, rng)
    u, i = _pairs(spec, world, counts, rng)
    rating = _ratings(u, i, world, rng)
    ts = _timestamps(u, spec.n_users, rng)
    ratings = pd.DataFrame({USERID: u + 1, ITEMID: i + 1, RATING: rating, TS: ts})
    log.info(
        kv(
            event="synthetic",
            users=spec.n_users,
            items=spec.n_items,
            ratings=len(ratings),
            click_share=float((rating > 3).mean()),
        )
    )
    return users, movies, ratings


def prepare_synthetic(
    out_dir: Path,
    *,
    n_ratings: int = 1_000_000,
    seed: int = SEED,
    n_users: int | None = None,
    n_items: int | None = None,
) -> None:
    """Generate and write the three canonical files into ``out_dir`` (sizes: see :class:`SyntheticSpec`)."""
    users, movies, ratings = generate(SyntheticSpec(n_ratings, seed, n_users, n_items))
    write_movielens(out_dir, users, movies, ratings)
