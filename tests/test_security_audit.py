"""Static audit of the code base: checkpoints load only through safetensors or
``torch.load(weights_only=True)``, nothing unpickles, and no shell command is ever built (no
``shell=True``, ``os.system``, ``os.popen``). Reads the syntax tree of every Python file we ship."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocol", "sender", "receiver", "model", "deploy")


def _name(node: ast.AST) -> str:
    """Dotted name of a call target: ``torch.load``, ``os.system``, ``load`` ..."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def findings(source: str, filename: str = "<src>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        where = f"{filename}:{node.lineno}"
        if name.endswith("torch.load") or name == "load" and _keyword(node, "weights_only") is not None:
            if not _is_true(_keyword(node, "weights_only")):
                found.append(f"{where}: torch.load without weights_only=True")
        if _is_true(_keyword(node, "shell")):
            found.append(f"{where}: shell=True")
        if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
            found.append(f"{where}: {name} runs a shell")
        if name in ("pickle.load", "pickle.loads", "cPickle.load", "dill.load", "joblib.load"):
            found.append(f"{where}: {name} unpickles")
        if name.endswith("np.load") or name.endswith("numpy.load"):
            if _is_true(_keyword(node, "allow_pickle")):
                found.append(f"{where}: np.load(allow_pickle=True)")
        if name in ("yaml.load", "yaml.unsafe_load") and not _keyword(node, "Loader"):
            found.append(f"{where}: {name} without a safe Loader")
        if name in ("eval", "exec"):
            found.append(f"{where}: {name}")
    return found


def _python_files():
    for package in PACKAGES:
        folder = ROOT / package
        if folder.is_dir():
            yield from sorted(folder.rglob("*.py"))


def test_the_audit_catches_what_it_looks_for():
    bad = """
import os, subprocess, torch, pickle, numpy as np
torch.load("x.pth")
torch.load("x.pth", weights_only=False)
subprocess.run(cmd, shell=True)
os.system("ffmpeg " + name)
pickle.loads(data)
np.load("a.npy", allow_pickle=True)
"""
    assert len(findings(bad)) == 6
    good = """
import subprocess, torch, numpy as np
torch.load("x.pth", weights_only=True, map_location="cpu")
subprocess.run(["ffmpeg", "-i", name], check=True)
np.load("a.npz", allow_pickle=False)
"""
    assert findings(good) == []


def test_shipped_code_loads_no_pickles_and_builds_no_shell_commands():
    problems = []
    for path in _python_files():
        problems += findings(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, "\n".join(problems)
