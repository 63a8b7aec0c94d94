"""Integration fixtures: the real services, started once per test session.

``services`` runs the native runtime's ``up`` (a no-op when ``make services-up`` already ran) and,
at the end, stops only what it started itself, so a developer's running stack is left alone.
Tests must not clobber the demo's data: unique index names, key prefixes, model names and a temp
feature repository.
"""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from mlrec.services import down, up
from mlrec.settings import Settings


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    settings = Settings.from_env()
    started = up(settings)
    try:
        yield settings
    finally:
        if started:
            down(settings, started)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for anything a test creates in a shared server."""
    return f"mlrec-test-{uuid.uuid4().hex[:10]}"
