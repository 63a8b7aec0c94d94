"""The canonical-layout readers and writer on tiny hand-written files."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import AGE, GENDER, GENRES, ITEMID, OCCUPATION, RATING, TITLE, TS, USERID, ZIPCODE
from mlrec.data import DataError, load_dataset, load_movies, load_ratings, load_users
from mlrec.data.movielens import write_movielens

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ml-tiny"
USERS, MOVIES, RATINGS = (
    (FIXTURE / name).read_text(encoding="latin-1") for name in ("users.dat", "movies.dat", "ratings.dat")
)


def write_raw(folder: Path, users: str = USERS, movies: str = MOVIES, ratings: str = RATINGS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("users.dat", users), ("movies.dat", movies), ("ratings.dat", ratings)):
        (folder / name).write_bytes(text.encode("latin-1"))
    return folder


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return write_raw(tmp_path / "ml-tiny")


def test_load_ratings_types_and_values(raw):
    ratings = load_ratings(raw)
    assert list(ratings.columns) == [USERID, ITEMID, RATING, TS]
    assert ratings.dtypes.astype(str).tolist() == ["int32", "int32", "int8", "int64"]
    assert ratings.values.tolist() == [
        [1, 1, 5, 978300760],
        [1, 2, 3, 978302109],
        [2, 3, 4, 978301968],
        [3, 4, 1, 978300275],
        [3, 1, 2, 978824291],
    ]
    assert ratings.attrs["rejected_rows"] == 0


def test_load_users_types_and_values(raw):
    users = load_users(raw)
    assert list(users.columns) == [USERID, GENDER, AGE, OCCUPATION, ZIPCODE]
    assert users[USERID].tolist() == [1, 2, 3]
    assert users[GENDER].tolist() == ["F", "M", "M"]
    assert users[AGE].tolist() == [1, 56, 25]
    assert users[OCCUPATION].tolist() == [10, 16, 15]
    assert users[ZIPCODE].tolist() == ["48067", "70072", "55117"]


def test_load_movies_keeps_colons_in_titles_and_latin1_accents(raw):
    movies = load_movies(raw)
    assert list(movies.columns) == [ITEMID, TITLE, GENRES]
    assert movies[TITLE].tolist()[1:3] == ["Star Wars: Episode IV - A New Hope (1977)", "Misérables, Les (1995)"]
    assert movies[GENRES].tolist()[3] == "unknown"
    assert movies[ITEMID].dtype == np.int32


def test_write_then_read_round_trips(raw, tmp_path):
    users, movies, ratings = load_dataset(raw)
    out = tmp_path / "copy"
    write_movielens(out, users, movies, ratings)
    for name in ("users.dat", "movies.dat", "ratings.dat"):
        assert (out / name).read_bytes() == (raw / name).read_bytes()
    users2, movies2, ratings2 = load_dataset(out)
    pd.testing.assert_frame_equal(ratings2, ratings)
    pd.testing.assert_frame_equal(movies2, movies)
    pd.testing.assert_frame_equal(users2, users)


def test_missing_file_names_file_and_fix(raw):
    (raw / "ratings.dat").unlink()
    with pytest.raises(DataError, match=r"ratings\.dat is missing.*s0_get_data\.py --dataset ml-tiny"):
        load_ratings(raw)


def test_empty_file_is_an_error(raw):
    (raw / "users.dat").write_text("")
    with pytest.raises(DataError, match=r"users\.dat is empty"):
        load_users(raw)


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("3::1::2", "fields"),  # truncated row
        ("3::1::2::978824291::7", "fields"),  # extra field: the fast path cannot see it, the byte count can
        ("3::x::2::978824291", "non-integer"),
        ("3::1::2.5::978824291", "non-integer"),
        ("3::1::::978824291", "non-integer"),  # NaN rating
        ("3::1::6::978824291", "Rating outside 1..5"),
        ("3::1::0::978824291", "Rating outside 1..5"),
        ("0::1::3::978824291", "UserID"),
        ("3::1::3::-5", "negative Timestamp"),
    ],
)
def test_corrupt_ratings_row_is_rejected_naming_file_row_and_fix(raw, bad_line, reason):
    (raw / "ratings.dat").write_text(RATINGS + bad_line + "\n")
    with pytest.raises(DataError) as err:
        load_ratings(raw)
    msg = str(err.value)
    assert str(raw / "ratings.dat") in msg and reason in msg
    assert "rows 6" in msg  # the bad row is pinpointed
    assert "--force" in msg  # and the fix is given


def test_a_few_bad_rows_below_threshold_are_dropped_and_counted(tmp_path):
    n = 5000
    ids = np.arange(1, n + 1)
    lines = [f"{u}::1::{1 + u % 5}::{978300000 + u}" for u in ids]
    lines[1234] = "1235::1::9::978301235"  # rating out of range
    lines[-1] = "5000::1"  # truncated last line
    raw = write_raw(tmp_path / "ml-big", ratings="\n".join(lines) + "\n")
    ratings = load_ratings(raw, max_rejected_frac=0.001)
    assert len(ratings) == n - 2
    assert ratings.attrs["rejected_rows"] == 2
    assert 1235 not in set(ratings[USERID]) and 5000 not in set(ratings[USERID])
    with pytest.raises(DataError, match="2 of 5000 rows rejected"):
        load_ratings(raw, max_rejected_frac=0.0)


def test_ratings_of_unknown_users_or_items_are_rejected(raw):
    (raw / "ratings.dat").write_text(RATINGS + "9::1::4::978300000\n")
    with pytest.raises(DataError, match=r"ratings\.dat.*UserID missing from users\.dat"):
        load_dataset(raw)
    (raw / "ratings.dat").write_text(RATINGS + "1::99::4::978300000\n")
    with pytest.raises(DataError, match=r"ratings\.dat.*MovieID missing from movies\.dat"):
        load_dataset(raw)


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("4::X::25::1::12345", "Gender"),
        ("4::M::30::1::12345", "Age not an ML-1M bucket"),
        ("4::M::25::21::12345", "Occupation not in 0..20"),
        ("4::M::25::1", "fields"),
        ("1::M::25::1::12345", "duplicate UserID"),
    ],
)
def test_corrupt_users_row_is_rejected(raw, bad_line, reason):
    (raw / "users.dat").write_text(USERS + bad_line + "\n")
    with pytest.raises(DataError) as err:
        load_users(raw)
    assert str(raw / "users.dat") in str(err.value) and reason in str(err.value)


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("5::No Genres (1990)", "fields"),
        ("x::Title (1990)::Drama", "MovieID"),
        ("5::Title (1990)::", "empty Genres"),
        ("1::Again (1990)::Drama", "duplicate MovieID"),
    ],
)
def test_corrupt_movies_row_is_rejected(raw, bad_line, reason):
    (raw / "movies.dat").write_text(MOVIES + bad_line + "\n", encoding="latin-1")
    with pytest.raises(DataError) as err:
        load_movies(raw)
    assert str(raw / "movies.dat") in str(err.value) and reason in str(err.value)


def test_blank_lines_are_ignored(raw):
    (raw / "ratings.dat").write_text(RATINGS.replace("\n", "\n\n", 1))
    assert len(load_ratings(raw)) == 5
