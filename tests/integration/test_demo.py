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
    (session,) = [p for p in (out / "sessions").iterdir() if p.is_dir()]
    clips = sorted(session.glob("[0-9][0-9][0-9][0-9].mp4"))
    assert len(clips) == 5 and (session / "session.mp4").is_file()
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 64
    report = json.loads((out / "bitrate.json").read_text())
    assert report["clips"] == 5 and report["media_seconds"] > 5
    assert 0 < report["bits_per_media_second"]["utterance_payload"] < 2000
    assert "5 rendered, 0 refused, 0 unsent" in done.stdout


async def test_demo_passes_a_dash_leading_token_to_its_sender(tmp_path, monkeypatch):
    """The sender process gets the token as --token=T, so a token starting with '-' is not an option."""
    monkeypatch.setattr(receiver.demo, "new_token", lambda: "-dash-first-token-0123")
    assert await run_demo(out_dir=tmp_path / "out", model="stub") == 0
    assert len(list((tmp_path / "out" / "sessions").glob("*/0005.mp4"))) == 1
