"""ML-100K conversion from RecBole's atomic files: on a tiny fake wheel and on the real PyPI wheel."""

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import (
    AGE,
    AGE_BUCKETS,
    GENDER,
    GENRES,
    GENRES_MAPPING,
    ITEMID,
    OCCUPATION,
    RATING,
    TITLE,
    TS,
    USERID,
    ZIPCODE,
)
from mlrec.core.paths import DEFAULT_DATA_DIR
from mlrec.data import DataError, load_dataset, ml100k

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "1\t1\t3\t881250949\n2\t2\t5.0\t891717742.0\n3\t3\t1\t878887116\n1\t3\t4\t880000000\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "2\tunkonwn\tunkonwn\tunknown\n"
    "3\tMisérables, Les\t1995\tDrama Musical\n"
)
USER = (
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    "1\t24\tM\ttechnician\t85711\n2\t17\tF\tstudent\t94043\n3\t56\tM\tlibrarian\tT8H1N\n"
)


def fake_wheel(path: Path, **override: str) -> Path:
    files = {"inter": INTER, "item": ITEM, "user": USER, **override}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
        for suffix, text in files.items():
            zf.writestr(f"{ml100k.MEMBER_PREFIX}.{suffix}", text.encode("utf-8"))
    return path


def test_fake_wheel_converts_to_canonical_layout(tmp_path):
    out = tmp_path / "ml-100k"
    ml100k.prepare_ml100k(out, tmp_path, wheel=fake_wheel(tmp_path / "fake.whl"))
    assert (out / "movies.dat").read_bytes().decode("latin-1").splitlines() == [
        "1::Toy Story (1995)::Animation|Children's|Comedy",
        "2::unkonwn::unknown",
        "3::Misérables, Les (1995)::Drama|Musical",
    ]
    assert (out / "users.dat").read_text().splitlines() == [
        "1::M::18::17::85711",  # 24 -> 18-24 bucket, technician -> technician/engineer
        "2::F::1::10::94043",  # 17 -> under 18, an under-18 student -> K-12 student
        "3::M::56::1::T8H1N",  # librarian -> academic/educator
    ]
    assert (out / "ratings.dat").read_text().splitlines() == [
        "1::1::3::881250949",
        "2::2::5::891717742",
        "3::3::1::878887116",
        "1::3::4::880000000",
    ]
    users, movies, ratings = load_dataset(out)
    assert (len(users), len(movies), len(ratings)) == (3, 3, 4)


def test_age_buckets_at_every_boundary():
    ages = np.array([7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73])
    assert ml100k.age_bucket(ages).tolist() == [1, 1, 18, 18, 25, 25, 35, 35, 45, 45, 50, 50, 56, 56]


def test_occupation_mapping_covers_ml100k_and_stays_in_ml1m_codes():
    assert len(ml100k.OCCUPATION_CODES) == 21
    assert set(ml100k.OCCUPATION_CODES.values()) <= set(range(21))
    names = pd.Series(["administrator", "educator", "none", "salesman", "entertainment", "astronaut"])
    assert ml100k.occupation_code(names, np.full(6, 30)).tolist() == [3, 1, 19, 14, 0, 0]


def test_wheel_without_the_dataset_names_the_member(tmp_path):
    wheel = tmp_path / "bad.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
    with pytest.raises(DataError, match=r"bad\.whl has no recbole/dataset_example/ml-100k/ml-100k\.user"):
        ml100k.read_wheel(wheel)


def test_non_integer_rating_is_refused(tmp_path):
    wheel = fake_wheel(tmp_path / "f.whl", inter=INTER.replace("\t3\t881250949", "\t3.5\t881250949"))
    with pytest.raises(DataError, match="rating: 1 non-integer"):
        ml100k.read_wheel(wheel)


def test_missing_column_is_refused(tmp_path):
    wheel = fake_wheel(tmp_path / "f.whl", user=USER.replace("age:token", "years:token"))
    with pytest.raises(DataError, match=r"missing columns \['age'\]"):
        ml100k.read_wheel(wheel)


@pytest.fixture(scope="session")
def real_wheel(request) -> Path:
    """The real recbole wheel: reused from the project cache, else pip-downloaded once into pytest's cache."""
    project_cache = DEFAULT_DATA_DIR / "cache"
    cache = project_cache if (project_cache / ml100k.WHEEL_NAME).is_file() else request.config.cache.mkdir("recbole")
    return ml100k.fetch_wheel(cache)


def test_real_wheel_has_the_published_ml100k(real_wheel, tmp_path):
    out = tmp_path / "ml-100k"
    ml100k.prepare_ml100k(out, tmp_path, wheel=real_wheel)
    users, movies, ratings = load_dataset(out)
    assert (len(users), len(movies), len(ratings)) == (943, 1682, 100_000)
    assert ratings.attrs.get("rejected_rows", 0) == 0
    assert users[AGE].isin(AGE_BUCKETS).all() and set(users[AGE]) == set(AGE_BUCKETS)
    assert users[OCCUPATION].between(0, 20).all()
    # every ML-100K occupation name was recognised (plus K-12 students among the under-18s)
    assert set(users[OCCUPATION]) == set(ml100k.OCCUPATION_CODES.values()) | {ml100k.K12_STUDENT}
    assert set(users[GENDER]) == {"M", "F"}
    assert ratings[RATING].between(1, 5).all() and set(ratings[RATING]) == {1, 2, 3, 4, 5}
    assert ratings.duplicated([USERID, ITEMID]).sum() == 0
    genres = movies[GENRES].str.split("|").explode()
    assert set(genres) - set(GENRES_MAPPING) == {"unknown"}  # the one non-ML-1M genre, code 0
    assert (movies[GENRES] == "unknown").sum() == 2
    assert movies.loc[movies[ITEMID] == 1, TITLE].item() == "Toy Story (1995)"
    assert ratings[TS].between(870_000_000, 900_000_000).all()  # Sep 1997 - Apr 1998
    assert users[ZIPCODE].str.len().gt(0).all()
