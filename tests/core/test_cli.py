"""mlrec.core.cli: config flags built from a dataclass."""

import argparse

from mlrec.core.cli import add_config_args, config_from_args
from mlrec.offline.train import TrainConfig


def _parse(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_config_args(parser, TrainConfig, epochs=7)
    return config_from_args(TrainConfig, parser.parse_args(list(argv)))


def test_defaults_and_overrides_are_typed():
    cfg = _parse()
    assert cfg.epochs == 7 and cfg.refit is True
    cfg = _parse("--epochs", "3", "--lr", "0.01")
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int) and cfg.lr == 0.01


def test_bool_fields_are_on_off_switches():
    """``type=bool`` would read "--refit False" as True; the flag is --refit / --no-refit instead."""
    assert _parse("--no-refit").refit is False
    assert _parse("--refit").refit is True
