"""Real MovieLens-100K without GroupLens: read it out of the RecBole wheel on PyPI.

``recbole==1.2.1`` ships ML-100K as atomic files under ``recbole/dataset_example/ml-100k/``
(tab-separated, first line ``name:type`` headers). We ``pip download`` the wheel (no install,
no dependencies), read the three files straight from the zip and convert them to the canonical
ML-1M layout:

- ``.inter`` ``user_id, item_id, rating (float), timestamp (float)`` -> ``ratings.dat`` (ints)
- ``.item``  ``item_id, movie_title, release_year, class`` -> ``movies.dat``: title becomes
  ``"Title (year)"`` when the year is 4 digits (item 1412 carries its year inside the title, item
  267 is literally ``unkonwn``); space-separated genres become ``|``-joined. ML-100K uses ML-1M's
  genre spellings; its two items whose only genre is ``unknown`` keep it (genre code 0).
- ``.user``  ``user_id, age, gender, occupation, zip_code`` -> ``users.dat``: raw ages become
  ML-1M buckets and occupation names become ML-1M codes (:data:`OCCUPATION_CODES`).

Occupation mapping (ML-100K name -> ML-1M code), chosen by meaning:

====================  ===  ===============================
administrator          3   clerical/admin
artist                 2   artist
doctor                 6   doctor/health care
educator               1   academic/educator
engineer              17   technician/engineer
entertainment          0   other (ML-1M has no such code)
executive              7   executive/managerial
healthcare             6   doctor/health care
homemaker              9   homemaker
lawyer                11   lawyer
librarian              1   academic/educator
marketing             14   sales/marketing
none                  19   unemployed
other                  0   other or not specified
programmer            12   programmer
retired               13   retired
salesman              14   sales/marketing
scientist             15   scientist
student                4   college/grad student (10 K-12 student when under 18)
technician            17   technician/engineer
writer                20   writer
====================  ===  ===============================
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core.constants import (
    AGE,
    AGE_BUCKETS,
    GENDER,
    GENRES,
    ITEMID,
    OCCUPATION,
    RATING,
    TITLE,
    TS,
    USERID,
    ZIPCODE,
)
from mlrec.core.log import kv
from mlrec.data.errors import DataError
from mlrec.data.movielens import GENRE_SEP, RATING_DTYPES, write_movielens

log = logging.getLogger(__name__)

RECBOLE_VERSION = "1.2.1"
WHEEL_NAME = f"recbole-{RECBOLE_VERSION}-py3-none-any.whl"
# sha256 of the PyPI wheel (pip also checks it against the index while downloading)
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBER_PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
EXPECTED_COUNTS = {"users": 943, "items": 1682, "ratings": 100000}

OCCUPATION_CODES: dict[str, int] = {
    "administrator": 3,
    "artist": 2,
    "doctor": 6,
    "educator": 1,
    "engineer": 17,
    "entertainment": 0,
    "executive": 7,
    "healthcare": 6,
    "homemaker": 9,
    "lawyer": 11,
    "librarian": 1,
    "marketing": 14,
    "none": 19,
    "other": 0,
    "programmer": 12,
    "retired": 13,
    "salesman": 14,
    "scientist": 15,
    "student": 4,
    "technician": 17,
    "writer": 20,
}
K12_STUDENT = 10
# lower edges of ML-1M age buckets 18, 25, 35, 45, 50, 56 (everything below 18 is bucket 1)
_AGE_EDGES = np.array(AGE_BUCKETS[1:])


def fetch_wheel(cache_dir: Path, *, sha256: str = WHEEL_SHA256) -> Path:
    """The recbole wheel in ``cache_dir``, fetched with pip (PyPI only) when absent."""
    cache_dir = Path(cache_dir)
    wheel = cache_dir / WHEEL_NAME
    if not wheel.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            f"recbole=={RECBOLE_VERSION}",
            "-d",
            str(cache_dir),
        ]
        log.info(kv(event="pip_download", cmd=repr(" ".join(cmd))))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wheel.is_file():
            raise DataError(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}",
                f"ML-100K comes from PyPI: check pip's index/proxy settings, or copy {WHEEL_NAME} into {cache_dir}",
            )
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if actual != sha256:
        raise DataError(f"{wheel}: sha256 {actual} != expected {sha256}", "delete the file and re-run")
    return wheel


def _read_atomic(zf: zipfile.ZipFile, wheel: Path, suffix: str, columns: list[str]) -> pd.DataFrame:
    """One RecBole atomic file as strings, columns renamed from ``name:type`` to ``name``."""
    member = f"{MEMBER_PREFIX}.{suffix}"
    try:
        raw = zf.read(member)
    except KeyError as exc:
        raise DataError(
            f"{wheel} has no {member}: not a recbole {RECBOLE_VERSION} wheel", "delete it and re-run"
        ) from exc
    frame = pd.read_csv(
        io.BytesIO(raw), sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, encoding="utf-8"
    )
    frame.columns = [c.split(":")[0] for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{wheel}!{member}: missing columns {missing} (has {list(frame.columns)})")
    return frame[columns]


def _integers(values: pd.Series, what: str) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(numbers) | (numbers != np.floor(numbers))
    if bad.any():
        raise DataError(
            f"recbole ML-100K {what}: {int(bad.sum())} non-integer values, e.g. {values[bad].head(3).tolist()}"
        )
    return numbers.astype(np.int64)


def age_bucket(ages: np.ndarray) -> np.ndarray:
    """Raw ages -> ML-1M buckets.

    <18 -> 1, 18-24 -> 18, 25-34 -> 25, 35-44 -> 35, 45-49 -> 45, 50-55 -> 50, 56+ -> 56.
    """
    return np.asarray(AGE_BUCKETS)[np.searchsorted(_AGE_EDGES, ages, side="right")]


def occupation_code(names: pd.Series, ages: np.ndarray) -> np.ndarray:
    """ML-100K occupation names -> ML-1M codes; unknown names -> 0 (other) with a warning."""
    codes = names.str.strip().str.lower().map(OCCUPATION_CODES)
    unknown = codes.isna()
    if unknown.any():
        log.warning(kv(event="unknown_occupation", names=sorted(set(names[unknown])), code=0))
    codes = codes.fillna(0).to_numpy(dtype=np.int64)
    return np.where((codes == OCCUPATION_CODES["student"]) & (ages < 18), K12_STUDENT, codes)


def convert_users(user: pd.DataFrame) -> pd.DataFrame:
    ages = _integers(user["age"], "user age")
    gender = user["gender"].str.strip().str.upper()
    if not gender.isin(["M", "F"]).all():
        raise DataError(f"recbole ML-100K user gender: unexpected values {sorted(set(gender) - {'M', 'F'})}")
    return pd.DataFrame(
        {
            USERID: _integers(user["user_id"], "user_id").astype(np.int32),
            GENDER: gender,
            AGE: age_bucket(ages).astype(np.int8),
            OCCUPATION: occupation_code(user["occupation"], ages).astype(np.int8),
            ZIPCODE: user["zip_code"].str.strip(),
        }
    )


def convert_movies(item: pd.DataFrame) -> pd.DataFrame:
    year = item["release_year"].str.strip()
    title = item["movie_title"].str.strip()
    title = title.where(~year.str.fullmatch(r"\d{4}"), title + " (" + year + ")")
    genres = item["class"].str.split().str.join(GENRE_SEP)
    return pd.DataFrame(
        {
            ITEMID: _integers(item["item_id"], "item_id").astype(np.int32),
            TITLE: title,
            GENRES: genres.where(genres != "", "unknown"),
        }
    )


def convert_ratings(inter: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            USERID: _integers(inter["user_id"], "user_id"),
            ITEMID: _integers(inter["item_id"], "item_id"),
            RATING: _integers(inter["rating"], "rating"),
            TS: _integers(inter["timestamp"], "timestamp"),
        }
    ).astype(RATING_DTYPES)


def read_wheel(wheel: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(users, movies, ratings) in canonical columns, straight from the wheel's zip."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            user = _read_atomic(zf, wheel, "user", ["user_id", "age", "gender", "occupation", "zip_code"])
            item = _read_atomic(zf, wheel, "item", ["item_id", "movie_title", "release_year", "class"])
            inter = _read_atomic(zf, wheel, "inter", ["user_id", "item_id", "rating", "timestamp"])
    except zipfile.BadZipFile as exc:
        raise DataError(f"{wheel} is not a valid wheel/zip ({exc})", "delete it and re-run") from exc
    return convert_users(user), convert_movies(item), convert_ratings(inter)


def prepare_ml100k(out_dir: Path, cache_dir: Path, *, wheel: Path | None = None) -> None:
    """Fetch (or reuse) the recbole wheel and write ML-100K in the canonical layout into ``out_dir``."""
    users, movies, ratings = read_wheel(wheel or fetch_wheel(cache_dir))
    write_movielens(out_dir, users, movies, ratings)
