"""`textcall demo` end to end on the stub: a receiver and a real sender process on loopback."""

from __future__ import annotations

import json
import subprocess

import cv2

import receiver.demo
from receiver.demo import run_demo
from tests.integration.processes import child_env, textcall_command


def test_demo_command_leaves_clips_sheet_and_bitrate(tmp_path):
    out = tmp_path / "demo-out"
    done = subprocess.run(textcall_command("demo", "--model", "stub", "--out", str(out)), env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sessions = [p for p in (out / "sessions").iterdir() if p.is_dir() and p.name != "calls"]
    counts = sorted(len(list(s.glob("[0-9][0-9][0-9][0-9].mp4"))) for s in sessions)
    assert counts == [2, 4] and all((s / "session.mp4").is_file() for s in sessions)
    for sender in ("demo", "demo-style"):  # one face per call, kept beside the recordings
        face = json.loads((out / "sessions" / "calls" / sender / "face.json").read_text())
        assert face["number"] == 1 and face["source"] == ("stub" if sender == "demo" else "style")
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 64
    report = json.loads((out / "bitrate.json").read_text())
    assert report["clips"] == 4 and report["media_seconds"] > 4
    rates = report["bits_per_call_second"]  # all in, per second of call (Hello to close), setup apart
    assert report["call_seconds"] > 0 and 0 < rates["utterance_payload"] < rates["udp_in"]
    assert report["udp_bytes_in"] > report["received"]["dtls_bytes"] - report["setup_received"]["dtls_bytes"]
    assert "all-in UDP" in done.stdout and any((s / "report.md").is_file() for s in sessions)
    assert "4 rendered, 0 refused, 0 unsent" in done.stdout and "2 rendered, 0 refused, 0 unsent" in done.stdout
    # what it wrote holds the speech text: the owner's only
    for path in (out / "sessions").rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


async def test_demo_gives_its_sender_the_token_in_the_environment_not_the_command_line(tmp_path, monkeypatch):
    """A command line is visible to every user of the machine (`ps`); the environment is not. A token
    starting with '-' still works."""
    import asyncio

    monkeypatch.setattr(receiver.demo, "new_token", lambda: "-dash-first-token-0123")
    spawned = []
    real = asyncio.create_subprocess_exec

    async def spy(*argv, **kwargs):
        spawned.append((argv, kwargs.get("env") or {}))
        return await real(*argv, **kwargs)

    monkeypatch.setattr(receiver.demo.asyncio, "create_subprocess_exec", spy)
    assert await run_demo(out_dir=tmp_path / "out", model="stub") == 0
    assert len(list((tmp_path / "out" / "sessions").glob("*/0004.mp4"))) == 1
    assert spawned and all(not any("dash-first" in a for a in argv) for argv, _ in spawned)
    assert all(env.get("TEXTCALL_TOKEN") == "-dash-first-token-0123" for _, env in spawned)
