"""ML-1M download/verify/extract, exercised with a small zip built here (GroupLens is not needed)."""

import hashlib
import time
import zipfile
from pathlib import Path

import pytest

from mlrec.data import DataError, load_dataset, ml1m

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ml-tiny"
USERS, MOVIES, RATINGS = ((FIXTURE / name).read_bytes() for name in ("users.dat", "movies.dat", "ratings.dat"))


def build_zip(path: Path) -> str:
    """A zip laid out like ml-1m.zip (files under ml-1m/ plus a README); returns its sha256."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-1m/", "")
        zf.writestr("ml-1m/README", "readme")
        zf.writestr("ml-1m/users.dat", USERS)
        zf.writestr("ml-1m/movies.dat", MOVIES)
        zf.writestr("ml-1m/ratings.dat", RATINGS)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_published_checksums_are_well_formed():
    assert len(ml1m.MD5) == 32 and len(ml1m.SHA256) == 64
    int(ml1m.MD5, 16), int(ml1m.SHA256, 16)


def test_cached_zip_with_matching_checksum_is_extracted(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    sha = build_zip(cache / ml1m.ZIP_NAME)
    out = tmp_path / "raw" / "ml-1m"
    # an unreachable URL proves the cached zip is used without any download
    ml1m.prepare_ml1m(out, cache, sha256=sha, url="http://127.0.0.1:9/ml-1m.zip")
    assert sorted(p.name for p in out.iterdir()) == ["movies.dat", "ratings.dat", "users.dat"]
    users, movies, ratings = load_dataset(out)
    assert (len(users), len(movies), len(ratings)) == (3, 4, 5)


def test_checksum_mismatch_is_refused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    build_zip(cache / ml1m.ZIP_NAME)
    with pytest.raises(DataError, match=r"ml-1m\.zip: sha256 .* does not match the published"):
        ml1m.prepare_ml1m(tmp_path / "out", cache)  # the real published checksum
    assert not (tmp_path / "out").exists()


def test_zip_without_the_three_files_is_refused(tmp_path):
    path = tmp_path / ml1m.ZIP_NAME
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", RATINGS)
    with pytest.raises(DataError, match=r"lacks \['users\.dat', 'movies\.dat'\]"):
        ml1m.extract(path, tmp_path / "out")


def test_corrupt_zip_is_refused(tmp_path):
    path = tmp_path / ml1m.ZIP_NAME
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        ml1m.extract(path, tmp_path / "out")


def test_unreachable_source_fails_fast_with_manual_instructions(tmp_path):
    cache = tmp_path / "cache"
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        ml1m.fetch_zip(cache, url="http://127.0.0.1:9/ml-1m.zip", timeout=5)
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert "cannot reach GroupLens" in msg and str(cache / ml1m.ZIP_NAME) in msg and ml1m.SHA256 in msg
    assert [p.name for p in cache.iterdir()] == []  # no zip and no partial download left behind
