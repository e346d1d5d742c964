"""The arrows of the house: sender -> protocol <- receiver -> model, through one facade, with no cycles."""

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


# The one exception: protocol/rtc.py holds the WebRTC settings both peers share (ICE servers, loopback
# candidates), so it may use aiortc (which the sender and the receiver both install); nothing heavy.
ALLOWED = {"protocol/rtc.py": {"aiortc"}}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_follow_the_arrows(package):
    bad = {}
    for path in (ROOT / package).rglob("*.py"):
        found = imports_of(path) & FORBIDDEN[package] - ALLOWED.get(str(path.relative_to(ROOT)), set())
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


# ------------------------------------------------------------------------------ the import graph
PACKAGES = ("protocol", "sender", "receiver", "model")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(path: Path, modules: set[str]) -> set[str]:
    """The textcall modules ``path`` imports, at import time or inside functions (a lazy import is an
    arrow too), leaving out ``if TYPE_CHECKING:`` blocks. ``from package import name`` is an arrow to
    the submodule ``package.name`` where there is one, else to the package."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    modules = set(paths)
    return {name: _imported(path, modules) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_anywhere():
    assert cycles(import_graph()) == []


def test_the_receiver_reaches_the_model_only_through_its_facade():
    graph = import_graph()
    bad = {name: sorted(t for t in targets if t.startswith("model."))
           for name, targets in graph.items() if name.startswith("receiver")}
    bad = {name: targets for name, targets in bad.items() if targets}
    assert not bad, f"import these from `model` (model/__init__.py), not its modules: {bad}"


def test_the_serving_receiver_does_not_import_the_report_harness():
    """``textcall report`` measures the receiver from outside: nothing the receiver serves with imports
    ``receiver.report`` (the demo and the CLI, which run the report, may)."""
    graph = import_graph()
    outside = {"receiver.demo", "receiver.cli"}
    bad = {name: sorted(t for t in targets if t.startswith("receiver.report"))
           for name, targets in graph.items()
           if name.startswith("receiver") and not name.startswith("receiver.report") and name not in outside}
    assert not any(bad.values()), bad


def test_the_facade_loads_lazily_and_every_name_resolves():
    code = (
        "import sys\n"
        "import model\n"
        "assert not [m for m in ('numpy', 'torch', 'av') if m in sys.modules]\n"
        "for name in model.__all__:\n"
        "    assert getattr(model, name) is not None, name\n"
        "assert 'torch' not in sys.modules  # the facade itself needs no torch until a generator loads\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
