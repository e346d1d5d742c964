"""The arrows of the house: sender -> protocol <- receiver -> model."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "protocol": {"aiortc", "aiohttp", "torch", "numpy", "sender", "receiver", "model"},
    "sender": {"receiver", "model", "torch", "torchaudio", "numpy", "cv2"},
    "model": {"aiortc", "aiohttp", "protocol", "sender", "receiver"},
    "receiver": {"sender"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_follow_the_arrows(package):
    bad = {}
    for path in (ROOT / package).rglob("*.py"):
        found = imports_of(path) & FORBIDDEN[package]
        if found:
            bad[str(path.relative_to(ROOT))] = sorted(found)
    assert not bad, f"{package} imports what it must not: {bad}"


def test_sender_cli_help_loads_no_torch():
    code = (
        "import sys\n"
        "from sender.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in ('torch', 'torchaudio', 'numpy', 'cv2', 'TTS') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
