"""ML-25M / ML-32M from the user's zip: checksum first, then the CSV release converted to the canonical layout.

The zips are never in CI (GroupLens asks that they not be redistributed), so these tests build a small
zip in the release's layout and register its MD5 as the release's.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace

import numpy as np
import pytest

from mlrec.core.constants import GENDER, GENDER_MAPPING, ITEMID, RATING, USERID
from mlrec.core.paths import Paths
from mlrec.data import load_dataset, ml_csv, prepare_dataset
from mlrec.data.errors import DataError
from mlrec.data.prepare import EXPECTED_COUNTS
from mlrec.offline.features import user_code_table
from mlrec.offline.pit import item_genre_matrix

HALF_STARS = [0.5, 1.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]


def _release_zip(path, n_users: int = 3, per_user: int = 24) -> tuple[list[float], int]:
    rows, ratings = ["userId,movieId,rating,timestamp"], []
    for u in range(1, n_users + 1):
        for k in range(per_user):
            r = HALF_STARS[(u + k) % len(HALF_STARS)]
            ratings.append(r)
            rows.append(f"{u},{k % 4 + 1},{r},{1_500_000_000 + 60 * k}")
    movies = [
        "movieId,title,genres",
        '1,"American President, The (1995)",Comedy|Drama|Romance',
        "2,Amélie (2001),Comedy|Romance",
        "3,Spirited Away (Sen to Chihiro no kamikakushi) 千と千尋 (2001),IMAX|Animation",
        "4,Unknown Film (2019),(no genres listed)",
    ]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-25m/ratings.csv", "\n".join(rows) + "\n")
        zf.writestr("ml-25m/movies.csv", "\n".join(movies) + "\n")
        zf.writestr("ml-25m/README.txt", "test release\n")
    return ratings, len(movies) - 1


@pytest.fixture
def release(tmp_path, monkeypatch):
    paths = Paths(tmp_path / "data")
    paths.cache_dir.mkdir(parents=True)
    ratings, n_movies = _release_zip(paths.cache_dir / "ml-25m.zip")
    counts = {"users": 3, "items": n_movies, "ratings": len(ratings)}
    fake = replace(ml_csv.RELEASES["ml-25m"], md5=ml_csv.md5_of(paths.cache_dir / "ml-25m.zip"), counts=counts)
    monkeypatch.setitem(ml_csv.RELEASES, "ml-25m", fake)
    monkeypatch.setitem(EXPECTED_COUNTS, "ml-25m", counts)
    return paths, ratings


def test_the_release_converts_to_the_canonical_layout(release):
    paths, source = release
    users, movies, ratings = load_dataset(prepare_dataset("ml-25m", paths))
    assert len(ratings) == len(source)
    # half stars rounded up: whole stars for the loader, and the label (rating > 3) unchanged on every row
    assert ratings[RATING].tolist() == np.ceil(source).astype(int).tolist()
    assert ((ratings[RATING] > 3).to_numpy() == (np.array(source) > 3)).all()
    # no demographics published: every user who rated, each coded "unknown" (0) by the features
    assert sorted(users[USERID]) == [1, 2, 3] and set(users[GENDER]) == {"U"}
    assert (user_code_table(users, GENDER, GENDER_MAPPING)[users[USERID]] == 0).all()
    titles = dict(zip(movies[ITEMID], movies["title"], strict=True))
    assert titles[1] == "American President, The (1995)" and titles[2] == "Amélie (2001)"
    assert titles[3].startswith("Spirited Away") and "?" in titles[3]  # outside latin-1: replaced, still displayed
    genres = item_genre_matrix(movies)
    assert genres[4].tolist() == [True] + [False] * (genres.shape[1] - 1)  # "(no genres listed)" -> code 0
    assert genres[3, 0] and genres[3].sum() == 2  # IMAX -> code 0, Animation its own


def test_a_zip_with_another_checksum_is_refused(release):
    paths, _ = release
    zip_path = paths.cache_dir / "ml-25m.zip"
    with zipfile.ZipFile(zip_path, "a") as zf:
        zf.writestr("ml-25m/extra.txt", "tampered")
    with pytest.raises(DataError, match=r"ml-25m\.zip: md5 [0-9a-f]{32} does not match the published") as info:
        prepare_dataset("ml-25m", paths)
    assert "files.grouplens.org/datasets/movielens/ml-25m.zip" in info.value.hint
    assert not paths.raw_dir("ml-25m").exists()


def test_a_missing_zip_names_where_to_put_it(tmp_path):
    paths = Paths(tmp_path)
    with pytest.raises(DataError, match="never downloaded") as info:
        prepare_dataset("ml-32m", paths)
    assert str(paths.cache_dir / "ml-32m.zip") in info.value.hint
    assert ml_csv.RELEASES["ml-32m"].md5 in info.value.hint
