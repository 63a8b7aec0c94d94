"""Read and write the canonical MovieLens-1M three-file layout that every later step consumes.

Files (latin-1 text, ``::``-separated, no header), exactly as GroupLens ships ML-1M:

- ``users.dat``   ``UserID::Gender::Age::Occupation::Zip-code``
- ``movies.dat``  ``MovieID::Title::Genres`` (genres ``|``-joined)
- ``ratings.dat`` ``UserID::MovieID::Rating::Timestamp``

The readers are strict because every later step trusts their output: a row with the wrong number
of fields, a non-number, a rating outside 1..5 or a reference to an unknown user/item is
*rejected*, counted and reported. A handful of rejects (at most ``MAX_REJECTED_FRAC`` of the rows)
is dropped with a warning; more than that means a truncated or corrupt file and raises
:class:`DataError` naming the file and the fix.

``ratings.dat`` can hold 10M rows, so it is parsed by pandas' C engine with ``sep=":"`` (the
``::`` separator then yields empty columns 1, 3, 5, which ``usecols`` skips) into explicit dtypes.
That fast path cannot see *extra* fields, so it is cross-checked by counting the ``:`` bytes
(6 per row); any surprise falls back to a slower line-by-line parse that pinpoints bad rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from mlrec.core.constants import (
    AGE,
    AGE_BUCKETS,
    GENDER,
    GENRES,
    ITEMID,
    N_OCCUPATIONS,
    OCCUPATION,
    RATING,
    TITLE,
    TS,
    USERID,
    ZIPCODE,
)
from mlrec.core.log import kv
from mlrec.data.errors import DataError, get_data_hint, refetch_hint

log = logging.getLogger(__name__)

USERS_FILE = "users.dat"
MOVIES_FILE = "movies.dat"
RATINGS_FILE = "ratings.dat"
RAW_FILES = (USERS_FILE, MOVIES_FILE, RATINGS_FILE)
ENCODING = "latin-1"
SEP = "::"
GENRE_SEP = "|"
# Releases without demographics (ML-25M, ML-32M) write these; the features read them as code 0 ("unknown")
UNKNOWN_GENDER, UNKNOWN_AGE = "U", 0
GENDERS = ("M", "F", UNKNOWN_GENDER)
RATING_MIN, RATING_MAX = 1, 5
MAX_REJECTED_FRAC = 0.001  # above this share of bad rows the file is truncated/corrupt, not noisy
_MAX_ID = np.iinfo(np.int32).max

USER_COLUMNS = [USERID, GENDER, AGE, OCCUPATION, ZIPCODE]
MOVIE_COLUMNS = [ITEMID, TITLE, GENRES]
RATING_COLUMNS = [USERID, ITEMID, RATING, TS]
RATING_DTYPES = {USERID: "int32", ITEMID: "int32", RATING: "int8", TS: "int64"}
USER_DTYPES = {USERID: "int32", AGE: "int8", OCCUPATION: "int8"}


@dataclass
class Rejects:
    """Rows a reader refused, grouped by reason, so they are reported rather than silently dropped."""

    path: Path
    n_rows: int = 0
    reasons: dict[str, np.ndarray] = field(default_factory=dict)  # reason -> 1-based row numbers

    def add(self, reason: str, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        if rows.size:
            self.reasons[reason] = np.concatenate([self.reasons.get(reason, rows[:0]), rows])

    @property
    def total(self) -> int:
        return int(sum(r.size for r in self.reasons.values()))

    def describe(self) -> str:
        parts = []
        for reason, rows in self.reasons.items():
            examples = ", ".join(str(r) for r in rows[:5])
            parts.append(f"{rows.size} {reason} (rows {examples}{', ...' if rows.size > 5 else ''})")
        return "; ".join(parts)

    def check(self, max_frac: float) -> int:
        """Raise when too many rows were rejected; otherwise warn about the few dropped. Returns the count."""
        total = self.total
        if total == 0:
            return 0
        if total > max_frac * max(self.n_rows, 1):
            raise DataError(
                f"{self.path}: {total} of {self.n_rows} rows rejected: {self.describe()}. "
                "The file is truncated or corrupt",
                refetch_hint(self.path.parent),
            )
        log.warning(
            kv(event="rows_rejected", file=self.path, rejected=total, rows=self.n_rows, detail=repr(self.describe()))
        )
        return total


def raw_file(raw_dir: Path, name: str) -> Path:
    """The path of one of the three files, which must exist and be non-empty."""
    path = Path(raw_dir) / name
    if not path.is_file():
        raise DataError(f"{path} is missing", get_data_hint(Path(raw_dir).name))
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty", refetch_hint(raw_dir))
    return path


def _read_lines(path: Path) -> pd.Series:
    """Non-blank lines as strings, indexed by 1-based row number (blank lines are not rows)."""
    try:
        text = path.read_text(encoding=ENCODING)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})", refetch_hint(path.parent)) from exc
    lines = pd.Series(text.splitlines(), dtype=object)
    lines = lines[lines.str.strip() != ""].reset_index(drop=True)
    lines.index = lines.index + 1
    return lines


def _split_fields(lines: pd.Series, n_fields: int, rejects: Rejects) -> pd.DataFrame:
    """Split on ``::``; rows with another field count are rejected."""
    parts = lines.str.split(SEP, regex=False)
    bad = parts.str.len() != n_fields
    rejects.add(f"rows without exactly {n_fields} `::`-separated fields", lines.index[bad])
    good = parts[~bad]
    return pd.DataFrame(good.tolist(), index=good.index, columns=range(n_fields), dtype=object)


def _to_number(values: pd.Series) -> pd.Series:
    """Integers as float64 (NaN where the text is not an integer), so one check can find them."""
    numbers = pd.to_numeric(values.astype(object).str.strip(), errors="coerce").astype("float64")
    return numbers.where(np.isfinite(numbers) & (numbers == np.floor(numbers)))


def _drop_rejected(frame: pd.DataFrame, checks: dict[str, pd.Series], rejects: Rejects) -> pd.DataFrame:
    """Reject rows failing any check, each counted once under the first reason it fails."""
    bad_any = pd.Series(False, index=frame.index)
    for reason, bad in checks.items():
        bad = bad.fillna(True).astype(bool) & ~bad_any
        rejects.add(reason, frame.index[bad].to_numpy())
        bad_any |= bad
    return frame[~bad_any]


def _bad_id(ids: pd.Series) -> pd.Series:
    return ids.isna() | (ids <= 0) | (ids > _MAX_ID)


# -- users ---------------------------------------------------------------------------------------
def load_users(raw_dir: Path, *, max_rejected_frac: float = MAX_REJECTED_FRAC) -> pd.DataFrame:
    """``users.dat`` -> [userid int32, gender str (M/F, U = not published), age int8 (ML-1M bucket, 0 = not
    published), occupation int8 (0..20), zipcode str]."""
    path = raw_file(raw_dir, USERS_FILE)
    lines = _read_lines(path)
    rejects = Rejects(path, n_rows=len(lines))
    fields = _split_fields(lines, 5, rejects)
    frame = pd.DataFrame(
        {
            USERID: _to_number(fields[0]),
            GENDER: fields[1].str.strip(),
            AGE: _to_number(fields[2]),
            OCCUPATION: _to_number(fields[3]),
            ZIPCODE: fields[4].str.strip(),
        },
        index=fields.index,
    )
    frame = _drop_rejected(
        frame,
        {
            "non-numeric or non-positive UserID": _bad_id(frame[USERID]),
            f"Gender not in {'/'.join(GENDERS)}": ~frame[GENDER].isin(GENDERS),
            f"Age not an ML-1M bucket {AGE_BUCKETS} (or {UNKNOWN_AGE})": ~frame[AGE].isin([*AGE_BUCKETS, UNKNOWN_AGE]),
            f"Occupation not in 0..{N_OCCUPATIONS - 1}": ~frame[OCCUPATION].between(0, N_OCCUPATIONS - 1),
            "duplicate UserID": frame[USERID].duplicated(),
        },
        rejects,
    )
    n_rejected = rejects.check(max_rejected_frac)
    users = frame.astype(USER_DTYPES).astype({GENDER: str, ZIPCODE: str}).reset_index(drop=True)
    users.attrs["rejected_rows"] = n_rejected
    return users


# -- movies --------------------------------------------------------------------------------------
def load_movies(raw_dir: Path, *, max_rejected_frac: float = MAX_REJECTED_FRAC) -> pd.DataFrame:
    """``movies.dat`` -> [itemid int32, title str, genres str (``|``-joined)].

    Titles may contain ``:`` (``Star Wars: Episode IV``), so the id is cut at the first ``::`` and
    the genres at the last one; whatever lies between is the title.
    """
    path = raw_file(raw_dir, MOVIES_FILE)
    lines = _read_lines(path)
    rejects = Rejects(path, n_rows=len(lines))
    head = lines.str.partition(SEP)
    rest = head[2].str.rpartition(SEP)
    frame = pd.DataFrame({ITEMID: _to_number(head[0]), TITLE: rest[0], GENRES: rest[2].str.strip()}, index=lines.index)
    frame = _drop_rejected(
        frame,
        {
            "rows without 3 `::`-separated fields": (head[1] == "") | (rest[1] == ""),
            "non-numeric or non-positive MovieID": _bad_id(frame[ITEMID]),
            "empty Title": frame[TITLE].str.strip() == "",
            "empty Genres": frame[GENRES] == "",
            "duplicate MovieID": frame[ITEMID].duplicated(),
        },
        rejects,
    )
    n_rejected = rejects.check(max_rejected_frac)
    movies = frame.astype({ITEMID: "int32", TITLE: str, GENRES: str}).reset_index(drop=True)
    movies.attrs["rejected_rows"] = n_rejected
    return movies


# -- ratings -------------------------------------------------------------------------------------
def _count_bytes(path: Path, needle: bytes, chunk: int = 1 << 24) -> int:
    count = 0
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            count += block.count(needle)
    return count


def _read_ratings_fast(path: Path) -> pd.DataFrame | None:
    """The C-engine parse; None when the file is not perfectly formed (then the slow path explains why)."""
    names = [USERID, "_1", ITEMID, "_3", RATING, "_5", TS]
    try:
        frame = pd.read_csv(
            path,
            sep=":",
            header=None,
            names=names,
            usecols=RATING_COLUMNS,
            dtype=RATING_DTYPES,
            engine="c",
            encoding=ENCODING,
        )
    except (ValueError, OverflowError, pd.errors.ParserError):
        return None
    if _count_bytes(path, b":") != 6 * len(frame):  # a row with extra fields parses silently
        return None
    frame.index = frame.index + 1
    return frame[RATING_COLUMNS]


def _read_ratings_slow(path: Path, rejects: Rejects) -> pd.DataFrame:
    lines = _read_lines(path)
    rejects.n_rows = len(lines)
    fields = _split_fields(lines, 4, rejects)
    frame = pd.DataFrame({col: _to_number(fields[i]) for i, col in enumerate(RATING_COLUMNS)}, index=fields.index)
    return _drop_rejected(frame, {"non-integer fields": frame.isna().any(axis=1)}, rejects)


def load_ratings(raw_dir: Path, *, max_rejected_frac: float = MAX_REJECTED_FRAC) -> pd.DataFrame:
    """``ratings.dat`` -> [userid int32, itemid int32, rating int8 (1..5), ts int64], in file order."""
    path = raw_file(raw_dir, RATINGS_FILE)
    rejects = Rejects(path)
    frame = _read_ratings_fast(path)
    if frame is None:
        log.info(kv(event="ratings_slow_path", file=path))
        frame = _read_ratings_slow(path, rejects)
    else:
        rejects.n_rows = len(frame)
    frame = _drop_rejected(
        frame,
        {
            "non-positive or too large UserID": _bad_id(frame[USERID]),
            "non-positive or too large MovieID": _bad_id(frame[ITEMID]),
            f"Rating outside {RATING_MIN}..{RATING_MAX}": ~frame[RATING].between(RATING_MIN, RATING_MAX),
            "negative Timestamp": frame[TS] < 0,
        },
        rejects,
    )
    n_rejected = rejects.check(max_rejected_frac)
    ratings = frame.astype(RATING_DTYPES).reset_index(drop=True)
    ratings.attrs["rejected_rows"] = n_rejected
    return ratings


def check_references(
    ratings: pd.DataFrame,
    users: pd.DataFrame,
    movies: pd.DataFrame,
    raw_dir: Path,
    *,
    max_rejected_frac: float = MAX_REJECTED_FRAC,
) -> pd.DataFrame:
    """Reject ratings whose user is not in users.dat or whose item is not in movies.dat."""
    rejects = Rejects(Path(raw_dir) / RATINGS_FILE, n_rows=len(ratings))
    frame = ratings.set_axis(ratings.index + 1)
    frame = _drop_rejected(
        frame,
        {
            f"ratings of a UserID missing from {USERS_FILE}": ~frame[USERID].isin(users[USERID]),
            f"ratings of a MovieID missing from {MOVIES_FILE}": ~frame[ITEMID].isin(movies[ITEMID]),
        },
        rejects,
    )
    n_rejected = rejects.check(max_rejected_frac)
    if n_rejected == 0:
        return ratings
    out = frame.reset_index(drop=True)
    out.attrs["rejected_rows"] = ratings.attrs.get("rejected_rows", 0) + n_rejected
    return out


# -- writer --------------------------------------------------------------------------------------
def _require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"cannot write {what}: missing columns {missing} (have {list(frame.columns)})")


def _write_text(path: Path, frame: pd.DataFrame, columns: list[str]) -> None:
    """Join string-ified columns with ``::`` and write latin-1 (titles carry accents like ``Misérables``)."""
    text = frame[columns[0]].astype(str)
    for col in columns[1:]:
        values = frame[col].astype(str)
        if values.str.contains("\n", regex=False).any():
            raise DataError(f"cannot write {path}: column {col!r} contains a newline")
        text = text + SEP + values
    try:
        data = ("\n".join(text.tolist()) + "\n").encode(ENCODING)
    except UnicodeEncodeError as exc:
        raise DataError(f"cannot write {path}: text not representable in {ENCODING} ({exc})") from exc
    path.write_bytes(data)


def write_users(path: Path, users: pd.DataFrame) -> None:
    _require_columns(users, USER_COLUMNS, str(path))
    for col in (GENDER, ZIPCODE):
        if users[col].astype(str).str.contains(":", regex=False).any():
            raise DataError(f"cannot write {path}: column {col!r} contains ':'")
    _write_text(path, users, USER_COLUMNS)


def write_movies(path: Path, movies: pd.DataFrame) -> None:
    _require_columns(movies, MOVIE_COLUMNS, str(path))
    _write_text(path, movies, MOVIE_COLUMNS)


def write_ratings(path: Path, ratings: pd.DataFrame) -> None:
    """Integers only, so pyarrow's multi-threaded CSV writer can do it (10M rows in ~2 s).

    Null columns between the values become the empty fields that make ``:`` into ``::``.
    """
    _require_columns(ratings, RATING_COLUMNS, str(path))
    n = len(ratings)
    empty = pa.nulls(n)
    arrays, names = [], []
    for i, col in enumerate(RATING_COLUMNS):
        if i:
            arrays.append(empty)
            names.append(f"_{i}")
        arrays.append(pa.array(ratings[col].to_numpy(dtype=np.int64)))
        names.append(col)
    options = pacsv.WriteOptions(include_header=False, delimiter=":", quoting_style="none")
    pacsv.write_csv(pa.table(arrays, names=names), str(path), write_options=options)


def write_movielens(out_dir: Path, users: pd.DataFrame, movies: pd.DataFrame, ratings: pd.DataFrame) -> None:
    """Write the three canonical files into ``out_dir`` (created if needed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_users(out_dir / USERS_FILE, users)
    write_movies(out_dir / MOVIES_FILE, movies)
    write_ratings(out_dir / RATINGS_FILE, ratings)
