"""``textcall train``: every row of the trainers' table registers, and registering loads no torch."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from model.train_cli import TRAINERS, register

REPO = Path(__file__).resolve().parents[2]


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textcall")
    register(parser.add_subparsers(dest="command"))
    return parser


def test_every_trainer_in_the_table_registers_without_torch() -> None:
    """The table leaves out a row whose module fails to import, so a broken one would vanish silently."""
    modules = sorted({target.split(":")[0] for target in TRAINERS.values()})
    code = (
        "import argparse, sys\n"
        "from model.train_cli import register\n"
        "parser = argparse.ArgumentParser(prog='textcall')\n"
        "register(parser.add_subparsers(dest='command'))\n"
        f"missing = [m for m in {modules!r} if m not in sys.modules]\n"
        "assert not missing, missing\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_each_trainer_parses_its_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        _train_parser().parse_args(["train", name, "--help"])
    assert exit_.value.code == 0
    assert f"usage: textcall train {name}" in capsys.readouterr().out


def test_the_shared_flags_reach_the_trainers() -> None:
    parser = _train_parser()
    args = parser.parse_args(["train", "portrait", "--data", "d", "--out", "o", "--threads", "2", "--no-amp"])
    assert args.threads == 2 and args.no_amp and callable(args.run)
    args = parser.parse_args(["train", "restore", "--data", "d", "--out", "o", "--device", "cpu"])
    assert args.device == "cpu" and args.seed == 0
    args = parser.parse_args(["train", "gender", "--data", "d", "--out", "o"])
    assert args.steps == 400 and args.batch_size == 64
