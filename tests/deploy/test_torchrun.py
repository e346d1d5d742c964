"""The torchrun lines of deploy/README.md, on CPU with gloo: one node with two processes, and two
single-process "nodes" that meet at a c10d rendezvous on localhost; then a resume from the checkpoint.
Slow (several torch processes on a small CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.processes import ROOT, child_env, free_port

pytestmark = pytest.mark.slow

TORCHRUN = Path(sys.executable).parent / "torchrun"
TRAIN = ["-m", "model.train_cli", "diffusion", "--toy", "8", "--config", "tiny", "--batch-size", "1",
         "--save-every", "2", "--device", "cpu", "--threads", "1", "--no-progress"]


def _env() -> dict[str, str]:
    return child_env(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")


def _readme_lines() -> str:
    return (ROOT / "deploy" / "README.md").read_text()


@pytest.fixture(autouse=True)
def needs_torchrun():
    if not TORCHRUN.exists():
        pytest.skip("torchrun is not installed in this environment")


def test_one_node_several_processes_then_resume(tmp_path):
    assert "torchrun --standalone --nproc_per_node=8 -m model.train_cli diffusion" in _readme_lines()
    out = tmp_path / "ckpt"
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", *TRAIN, "--out", str(out)]
    first = subprocess.run([*command, "--steps", "2"], env=_env(), cwd=ROOT, capture_output=True,
                           text=True, timeout=400)  # fmt: skip
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert json.loads((out / "train_state.json").read_text())["step"] == 2
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    again = subprocess.run([*command, "--steps", "4"], env=_env(), cwd=ROOT, capture_output=True,
                           text=True, timeout=400)  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming" in again.stderr + again.stdout
    assert json.loads((out / "train_state.json").read_text())["step"] == 4


def test_two_nodes_meet_at_a_rendezvous(tmp_path):
    assert "--rdzv_backend=c10d --rdzv_endpoint=" in _readme_lines()
    out = tmp_path / "shared-ckpt"
    port = free_port()
    command = [str(TORCHRUN), "--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
               f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=textcall-test", *TRAIN,
               "--out", str(out), "--steps", "2"]  # fmt: skip
    nodes = [subprocess.Popen(command, env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]  # fmt: skip
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=400)[0])
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    assert all(node.returncode == 0 for node in nodes), "\n".join(o[-3000:] for o in outputs)
    assert json.loads((out / "train_state.json").read_text())["step"] == 2
    assert os.path.getsize(out / "model.safetensors") > 0
