"""One error base class: every user-fixable error is an MlrecError, and a script prints it as one line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from mlrec.core import cli
from mlrec.core.errors import MlrecError
from mlrec.core.io import ArtifactError
from mlrec.core.settings import SettingsError
from mlrec.data import DataError
from mlrec.loaders import LoadCheckError
from mlrec.loaders.triton_repo import ModelSignatureError
from mlrec.models import CheckpointError
from mlrec.models.export import ExportError
from mlrec.offline.feature_meta import FeatureMetaError
from mlrec_runtime.feast_server import FeastCommandError
from mlrec_runtime.runtime import InstallError, ServiceError, StartError

USER_ERRORS = [
    ArtifactError,
    SettingsError,
    DataError,
    FeatureMetaError,
    CheckpointError,
    ExportError,
    LoadCheckError,
    ModelSignatureError,
    ServiceError,
    InstallError,
    StartError,
    FeastCommandError,
]
# The builtin bases callers already catch stay (e.g. `except FileNotFoundError` around a read).
BUILTIN_BASES = {
    ArtifactError: FileNotFoundError,
    SettingsError: ValueError,
    DataError: ValueError,
    FeatureMetaError: ValueError,
    CheckpointError: RuntimeError,
    ExportError: RuntimeError,
    LoadCheckError: RuntimeError,
    ModelSignatureError: ValueError,
    ServiceError: RuntimeError,
}


@pytest.mark.parametrize("cls", USER_ERRORS, ids=lambda c: c.__name__)
def test_every_user_error_is_an_mlrec_error_carrying_the_hint(cls):
    assert issubclass(cls, MlrecError)
    exc = cls("what is wrong", "the fix")
    assert (exc.message, exc.hint, str(exc)) == ("what is wrong", "the fix", "what is wrong; the fix")
    assert str(cls("only a message")) == "only a message"


@pytest.mark.parametrize(("cls", "base"), list(BUILTIN_BASES.items()), ids=lambda c: getattr(c, "__name__", ""))
def test_builtin_bases_are_kept(cls, base):
    assert issubclass(cls, base)


def _run(main, argv: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["script", *argv])
    cli.run(main, argparse.ArgumentParser())


@pytest.mark.parametrize("cls", [DataError, ServiceError, LoadCheckError], ids=lambda c: c.__name__)
def test_cli_prints_message_and_hint_and_exits_2(cls, monkeypatch, capsys):
    def main(args):
        raise cls("ratings.dat is empty", "re-run s0")

    with pytest.raises(SystemExit) as exit_:
        _run(main, [], monkeypatch)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: ratings.dat is empty; re-run s0\n"


def test_cli_unreachable_service_exits_3(monkeypatch, capsys):
    import redis

    def main(args):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    with pytest.raises(SystemExit) as exit_:
        _run(main, [], monkeypatch)
    assert exit_.value.code == 3 and "make services-up" in capsys.readouterr().err


def test_cli_lets_a_bug_keep_its_traceback(monkeypatch):
    def main(args):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        _run(main, [], monkeypatch)


def test_cli_does_not_import_the_native_runtime():
    code = "import sys, mlrec.core.cli; print(sorted(m for m in sys.modules if m.startswith('mlrec_runtime')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_reports_a_malformed_setting_as_a_user_error(monkeypatch, capsys):
    monkeypatch.setenv("MLREC_LOG_LEVEL", "")
    monkeypatch.setenv("MLREC_PROGRESS", "maybe")

    with pytest.raises(SystemExit) as exit_:
        _run(lambda args: None, [], monkeypatch)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: environment variable MLREC_PROGRESS='maybe'")
