"""``textcall demo``: a receiver in this process, real sender processes, loopback WebRTC between them.

Two calls, one after the other, each one person throughout: ``demo`` (a face drawn from its first
caption, then text, caption + text and nothing) and ``demo-style`` (a style image from the gallery,
then text alone, which keeps that face).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from model import GeneratorSettings, contact_sheet, draw_portrait
from receiver.config import ReceiverConfig
from receiver.report.session_report import write_session_report
from receiver.serve import start, until_interrupted, viewer_url
from receiver.session import Rendered
from receiver.state import SESSIONS
from receiver.tokens import new_token

logger = logging.getLogger(__name__)

STYLE_ID = "demo-face"
# (sender id, script): caption | speech text | style image id   (textcall send --script format)
CALLS = (
    ("demo", """\
A woman with red hair and glasses is talking | |
Hello, this is textcall. Only this text crossed the network.
A woman is talking | The quick brown fox jumps over the lazy dog. |
| |
"""),
    ("demo-style", f"""\
A man is talking | Good morning, everyone. | {STYLE_ID}
| This face came from a picture in the receiver's gallery. |
"""),
)
UTTERANCES = sum(len(script.splitlines()) for _, script in CALLS)


async def run_demo(
    *,
    out_dir: Path,
    model: str = "default",
    device: str = "cpu",
    play: bool = False,
    generator_settings: GeneratorSettings | None = None,
    view: bool = False,
) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    gallery = out_dir / "gallery"
    draw_portrait(gallery / f"{STYLE_ID}.png", gender="male", seed=4)
    token = new_token()
    rendered: list[Rendered] = []
    config = ReceiverConfig(
        tokens=frozenset({token}),
        out_dir=out_dir / "sessions",
        port=0,
        model=model,
        device=device,
        generator_settings=generator_settings,
        play=play,
        gallery_dir=gallery,
        loopback=True,
        viewer=True,
    )
    if model == "stub":
        print("demo: using the stub generator (a test pattern and tones), not a trained model")
    runner, url = await start(config, sinks=[rendered.append])
    print(f"demo: receiver on {url}; starting a sender process")
    print(f"demo: watch in a browser: {viewer_url(url, token)}"
          + ("" if view else " (until the script ends; --view keeps it up)"))
    code = 0
    try:
        for sender_id, text in CALLS:
            script = out_dir / f"script-{sender_id}.txt"
            script.write_text(text, encoding="utf-8")
            print(f"demo: call {sender_id!r}")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sender", "send",
                "--receiver", url, "--sender-id", sender_id,
                "--script", str(script), "--outbox", "none", "--loopback", "--timeout", "900",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "TEXTCALL_TOKEN": token},  # never on a command line: `ps` shows those to everyone
            )  # fmt: skip
            assert process.stdout is not None
            async for line in process.stdout:
                print(f"  [{sender_id}] {line.decode(errors='replace').rstrip()}")
            code = code or await process.wait()
            await _sessions_closed(runner.app)
        if view:  # summarise now, then keep serving the viewer until Ctrl-C
            await _sessions_closed(runner.app)
            result = _summarise(out_dir, rendered, code)
            print(f"\ndemo: still serving the viewer at {viewer_url(url, token)} -- Ctrl-C to stop")
            await until_interrupted()
            return result
    finally:
        await runner.cleanup()  # closes the session: session.mp4 and bitrate.json are written
    return _summarise(out_dir, rendered, code)


async def _sessions_closed(app, timeout: float = 15.0) -> None:
    """Wait for the sender's session to close (it writes session.mp4 and bitrate.json)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while app[SESSIONS] and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)


def _summarise(out_dir: Path, rendered: list[Rendered], sender_code: int) -> int:
    if not rendered:
        print(f"demo: nothing was rendered (sender exit code {sender_code})")
        return 1
    session_dir = out_dir / "sessions" / rendered[0].session_id
    sheet = contact_sheet(
        [(f"{item.sender_id} #{item.seq} {item.request.mode}: {item.request.text[:40]}", item.clip.video) for item in rendered],
        out_dir / "contact_sheet.png",
    )
    bitrate_file = session_dir / "bitrate.json"
    if bitrate_file.exists():
        shutil.copy(bitrate_file, out_dir / "bitrate.json")
        try:  # the session's text-link report beside its recordings (the receiver itself writes only bitrate.json)
            write_session_report(session_dir, json.loads(bitrate_file.read_text()))
        except Exception:  # a report is a nicety: never lose the demo over it
            logger.exception("demo: writing the session's bitrate report failed")
    print(f"\n{'seq':>4}  {'input':<20} {'seconds':>7} {'first frame':>11} {'complete':>9}  file")
    for item in rendered:  # first frame: text arrival to the first chunk out (live playback starts); complete: clip recorded
        files = ", ".join(str(f) for f in item.files)
        print(f"{item.seq:>4}  {item.request.mode:<20} {item.clip.seconds:>7.2f} {item.first_frame_ms / 1000:>10.2f}s"
              f" {item.render_ms / 1000:>8.2f}s  {files}")
    if bitrate_file.exists():
        report = json.loads(bitrate_file.read_text())
        rates = report["bits_per_call_second"]
        print(
            f"\nbitrate of call {rendered[0].sender_id!r} over {report['call_seconds']:.1f} s of call "
            f"({report['media_seconds']:.1f} s of video made): all-in UDP {rates['udp_in']} b/s up, "
            f"{rates['udp_out']} b/s down ({rates['payload_in']} b/s of it protobuf payload up; "
            f"setup {report['setup_udp_bytes_in']} B up, apart)"
        )
    for session_id in dict.fromkeys(item.session_id for item in rendered):
        folder = out_dir / "sessions" / session_id
        sender = next(item.sender_id for item in rendered if item.session_id == session_id)
        print(f"\ndemo: call {sender!r}: clips in {folder}, the whole call {folder / 'session.mp4'}, "
              f"its face {out_dir / 'sessions' / 'calls' / sender / 'face.png'}")
    if sheet:
        print(f"demo: contact sheet {sheet}")
    print(f"demo: bitrate report {out_dir / 'bitrate.json'}")
    return 0 if sender_code == 0 else 1
