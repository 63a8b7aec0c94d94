"""MovieLens-25M and -32M from a zip the user already has: verified, then converted to the canonical layout.

These releases are large (250+ MB) and GroupLens asks that they not be redistributed, so nothing here
downloads them: copy ``ml-25m.zip`` (or ``ml-32m.zip``) from GroupLens into the cache folder, and the
data step checks it against the MD5 GroupLens publishes beside it (``<name>.zip.md5``) before reading a
byte. CI never has these zips; it runs the synthetic generator at ML-25M's shape instead.

Conversion to the ML-1M layout (``users.dat``, ``movies.dat``, ``ratings.dat``):

- ``ratings.csv`` ``userId,movieId,rating,timestamp`` -> ``ratings.dat``. Ratings are half stars
  (0.5 .. 5.0); they are rounded *up* to whole stars, which keeps the label exactly: for half stars,
  ``ceil(r) > 3`` if and only if ``r > 3`` (3.5 is a click, 3.0 is not).
- ``movies.csv`` ``movieId,title,genres`` -> ``movies.dat``. Genres are already ``|``-joined; names
  outside ML-1M's vocabulary (``IMAX``, ``(no genres listed)``) become genre code 0, as ML-100K's
  ``unknown``. Titles keep what latin-1 can hold (the canonical files' encoding; titles are only
  displayed), and a ``::`` inside a title becomes ``:``.
- ``users.dat``: these releases publish no demographics, so every user who rated gets gender ``U``,
  age 0 and occupation 0, the codes the features read as "unknown" (constant, so the feature step
  drops them as it drops any column without signal).
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec.core.constants import AGE, GENDER, GENRES, ITEMID, OCCUPATION, RATING, TS, USERID
from mlrec.core.log import kv
from mlrec.data.errors import DataError, get_data_hint
from mlrec.data.movielens import UNKNOWN_AGE, UNKNOWN_GENDER, ZIPCODE, write_movielens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Release:
    md5: str  # published by GroupLens as https://files.grouplens.org/datasets/movielens/<name>.zip.md5
    counts: dict[str, int]  # users who rated, movies, ratings (the release's README)

    def url(self, name: str) -> str:
        return f"https://files.grouplens.org/datasets/movielens/{name}.zip"


RELEASES = {
    "ml-25m": Release("6b51fb2759a8657d3bfcbfc42b592ada", {"users": 162_541, "items": 62_423, "ratings": 25_000_095}),
    "ml-32m": Release("d472be332d4daa821edc399621853b57", {"users": 200_948, "items": 87_585, "ratings": 32_000_204}),
}


def md5_of(path: Path) -> str:
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def _hint(name: str, target: Path) -> str:
    release = RELEASES[name]
    return (
        f"download {release.url(name)} on a machine with internet access, copy it to {target} "
        f"(md5 {release.md5}), then {get_data_hint(name)}; or use `--dataset synthetic --shape ml-25m`"
    )


def verified_zip(name: str, cache_dir: Path) -> Path:
    """``<cache_dir>/<name>.zip``, after checking it against the published MD5."""
    target = Path(cache_dir) / f"{name}.zip"
    if not target.is_file():
        raise DataError(f"{target}: not found ({name} is never downloaded by this project)", _hint(name, target))
    actual = md5_of(target)
    if actual != RELEASES[name].md5:
        raise DataError(
            f"{target}: md5 {actual} does not match the published {RELEASES[name].md5} (truncated or another file)",
            _hint(name, target),
        )
    return target


def _member(zf: zipfile.ZipFile, filename: str, zip_path: Path) -> str:
    for member in zf.namelist():
        if Path(member).name == filename:
            return member
    raise DataError(f"{zip_path} has no {filename}: it is not a MovieLens CSV release", "check which zip this is")


def _read_csv(zf: zipfile.ZipFile, member: str, **kwargs) -> pd.DataFrame:
    with zf.open(member) as fh:
        return pd.read_csv(fh, **kwargs)


def convert(zip_path: Path, out_dir: Path) -> None:
    """Read ``ratings.csv`` and ``movies.csv`` out of the zip and write the canonical three files."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            ratings = _read_csv(
                zf,
                _member(zf, "ratings.csv", zip_path),
                engine="pyarrow",
                dtype={"userId": "int32", "movieId": "int32", "rating": "float32", "timestamp": "int64"},
            )
            movies_member = _member(zf, "movies.csv", zip_path)
            movies = _read_csv(zf, movies_member, dtype={"movieId": "int32"}, keep_default_na=False)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{zip_path} is not a valid zip ({exc})", "delete it and copy it again") from exc
    ratings = pd.DataFrame(
        {
            USERID: ratings["userId"].to_numpy(),
            ITEMID: ratings["movieId"].to_numpy(),
            RATING: np.ceil(ratings["rating"].to_numpy()).astype(np.int8),
            TS: ratings["timestamp"].to_numpy(),
        }
    )
    titles = movies["title"].str.replace("::", ":", regex=False)
    titles = titles.map(lambda t: t.encode("latin-1", "replace").decode("latin-1"))
    movies = pd.DataFrame({ITEMID: movies["movieId"], "title": titles, GENRES: movies["genres"]})
    user_ids = np.unique(ratings[USERID].to_numpy())
    users = pd.DataFrame({USERID: user_ids, GENDER: UNKNOWN_GENDER, AGE: UNKNOWN_AGE, OCCUPATION: 0, ZIPCODE: ""})
    write_movielens(out_dir, users, movies, ratings)
    log.info(kv(event="converted", zip=zip_path, users=len(users), items=len(movies), ratings=len(ratings)))


def prepare_csv_release(name: str, out_dir: Path, cache_dir: Path) -> None:
    """Verify ``<cache_dir>/<name>.zip`` and convert it into ``out_dir``."""
    convert(verified_zip(name, cache_dir), Path(out_dir))
