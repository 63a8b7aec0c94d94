"""Contract strings are defined once (mlrec.core.contracts, Settings): checks for the copies we cannot import."""

from __future__ import annotations

import ast
import re

from mlrec.core.contracts import (
    DEPENDENCIES,
    FEAST_ITEM_SERVICE,
    FEAST_USER_PUSH,
    FEAST_USER_SERVICE,
    STAGES,
    TOTAL,
)
from mlrec.core.paths import REPO_ROOT

FEATURE_REPO = REPO_ROOT / "offline_to_online" / "rank" / "feature_repo" / "features.py"


def _constant_keywords(call: str, keyword: str) -> set[str]:
    """Every constant ``keyword=...`` of the calls to ``call`` in the feature repository."""
    tree = ast.parse(FEATURE_REPO.read_text())
    return {
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == call
        for kw in node.keywords
        if kw.arg == keyword and isinstance(kw.value, ast.Constant)
    }


def test_feast_feature_repository_declares_the_services_the_clients_ask_for():
    """The feature repo runs in Feast's venv without mlrec, so it spells the names itself: they must agree."""
    assert _constant_keywords("FeatureService", "name") == {FEAST_USER_SERVICE, FEAST_ITEM_SERVICE}


def test_feast_feature_repository_declares_the_push_source_events_write_to():
    """``POST /ml/event`` pushes user features by this name; the repo spells it in its ``_view(..., push=...)``."""
    assert _constant_keywords("_view", "push") == {FEAST_USER_PUSH}


def test_stage_names_are_distinct_and_remote_ones_name_their_service():
    assert len(set(STAGES)) == len(STAGES) and TOTAL not in STAGES
    assert set(DEPENDENCIES) < set(STAGES)  # "assemble" is local: no service to blame


def test_no_mlrec_variable_is_read_outside_settings():
    """``Settings`` is the one reader of MLREC_* (so ``.env`` applies everywhere); writing one for a child is fine."""
    read = re.compile(r"""(environ\.get|getenv|environ\[)\(?\s*["']MLREC_""")
    roots = [REPO_ROOT / "src" / "mlrec", REPO_ROOT / "benchmarks", REPO_ROOT / "offline", REPO_ROOT / "online"]
    roots += [p for p in (REPO_ROOT / "offline_to_online").iterdir() if p.is_dir()]
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{n}"
        for root in roots
        for path in root.rglob("*.py")
        if path != REPO_ROOT / "src" / "mlrec" / "core" / "settings.py" and path != FEATURE_REPO
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if read.search(line)
    ]
    assert offenders == []
