"""Real processes for fault tests and benchmarks: ``textcall receive`` and ``textcall send`` as
subprocesses that can be killed with SIGKILL, and readers of what the receiver left on disk."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def textcall_command(*args: str) -> list[str]:
    """``textcall ARGS`` through this interpreter (the same code as the installed entry point)."""
    return [sys.executable, "-m", "sender", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Process:
    """A child process whose combined output goes to a log file (read it when a test fails)."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.argv = argv
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            argv, stdout=self._log_file, stderr=subprocess.STDOUT, env=env or child_env(), cwd=cwd
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no Bye, nothing flushed that was not flushed already."""
        if self.alive():
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()
        return self.popen.returncode

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout)
        self._log_file.close()
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_healthy(url: str, process: Process | None = None, timeout: float = 30.0, context=None) -> dict:
    """Poll ``GET url/health`` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise AssertionError(f"{process.argv} exited with {process.popen.returncode}:\n{process.output()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2, context=context) as response:
                if response.status == 200:
                    return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    output = process.output() if process is not None else ""
    raise AssertionError(f"{url}/health did not answer within {timeout} s ({last}):\n{output}")


def start_receiver(out: Path, port: int, token: str, *extra: str, log: Path | None = None) -> Process:
    """``textcall receive --model stub`` on 127.0.0.1:port, recording to ``out``."""
    argv = textcall_command(
        "receive", "--model", "stub", "--loopback", "--port", str(port), "--token", token,
        "--out", str(out), *extra,
    )  # fmt: skip
    process = Process(argv, log or out.parent / f"receiver-{port}.log")
    wait_healthy(f"http://127.0.0.1:{port}", process)
    return process


@dataclass(frozen=True)
class RenderedEvent:
    t: float
    session: str
    sender_id: str
    seq: int
    text: str


def rendered_events(out: Path) -> list[RenderedEvent]:
    """Every ``rendered`` event in every session journal under ``out``, in time order."""
    events = []
    for journal in sorted(out.glob("*/session.jsonl")):
        sender_id, texts = "", {}
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed receiver
            if record["event"] == "hello":
                sender_id = record["sender_id"]
            elif record["event"] == "utterance":
                texts[record["seq"]] = record["text"]
            elif record["event"] == "rendered":
                seq = record["seq"]
                events.append(RenderedEvent(record["t"], journal.parent.name, sender_id, seq, texts.get(seq, "")))
    return sorted(events, key=lambda e: e.t)


def clip_files(out: Path) -> list[Path]:
    return sorted(out.glob("*/[0-9][0-9][0-9][0-9].mp4"))
