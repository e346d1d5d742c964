from __future__ import annotations

import numpy as np

from model.clip import Clip, Request
from model.stub import StubGenerator
from receiver.recorder import SessionRecorder, read_mp4, write_mp4


def test_mp4_keeps_audio_and_video_in_step(tmp_path):
    clip = StubGenerator().generate(Request(text="a few words of speech"))
    video, audio, fps, rate = read_mp4(write_mp4(tmp_path / "c.mp4", clip))
    assert video.shape == clip.video.shape and fps == clip.fps and rate == clip.sample_rate
    # AAC adds at most one frame of priming/padding
    assert abs(audio.size - clip.audio.size) <= 2048
    psnr = 10 * np.log10(255**2 / np.mean((video.astype(float) - clip.video) ** 2))
    assert psnr > 28


def test_session_recording_appends_clips(tmp_path):
    stub = StubGenerator()
    clips = [stub.generate(Request(text=t)) for t in ("one", "two words", "")]
    recorder = SessionRecorder(tmp_path)
    for seq, clip in enumerate(clips, 1):
        assert recorder.write(seq, clip)[0].name == f"{seq:04d}.mp4"
    recorder.close()
    recorder.close()  # idempotent
    video, audio, _, _ = read_mp4(tmp_path / "session.mp4")
    frames = sum(c.video.shape[0] for c in clips)
    assert video.shape[0] == frames
    assert abs(audio.size - frames * 1000) <= 2048  # 16 kHz / 16 fps = 1000 samples per frame


def test_odd_frame_sizes_are_padded(tmp_path):
    clip = Clip(np.zeros((4, 33, 35, 3), np.uint8), np.zeros(4000, np.float32))
    video, _, _, _ = read_mp4(write_mp4(tmp_path / "odd.mp4", clip))
    assert video.shape == (4, 34, 36, 3)


_KILLED_RECORDER = """
import os, signal, sys
from pathlib import Path
from model.clip import Request
from model.stub import StubGenerator
from receiver.recorder import SessionRecorder
stub, recorder = StubGenerator(), SessionRecorder(Path(sys.argv[1]))
for seq, text in enumerate(("one", "two words"), 1):
    recorder.write(seq, stub.generate(Request(text=text)))
(Path(sys.argv[1]) / ".0003.mp4.part").write_bytes(b"half a clip")  # as if killed while writing clip 3
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_recorder_leaves_no_corrupt_file_and_the_call_is_rebuilt(tmp_path):
    """kill -9 mid-session: only complete clips carry final names, and the next start rebuilds the
    whole-call recording from them (issue 28: crash-safe media)."""
    import subprocess
    import sys
    from pathlib import Path

    from receiver.recorder import recover_recordings

    folder = tmp_path / "recordings" / "sess01"
    folder.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", _KILLED_RECORDER, str(folder)], cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == -9
    assert sorted(p.name for p in folder.glob("*.mp4")) == ["0001.mp4", "0002.mp4"]  # no session.mp4, nothing half-written
    assert (folder / ".session.mp4.part").exists()
    rebuilt = recover_recordings(tmp_path / "recordings")
    assert rebuilt == [folder / "session.mp4"] and not list(folder.glob(".*.part"))
    stub = StubGenerator()
    frames = sum(stub.generate(Request(text=t)).video.shape[0] for t in ("one", "two words"))
    video, audio, _, _ = read_mp4(folder / "session.mp4")
    assert video.shape[0] == frames and abs(audio.size - frames * 1000) <= 2048
    assert recover_recordings(tmp_path / "recordings") == []  # nothing left to do
    assert recover_recordings(tmp_path / "nowhere") == []


def test_a_clip_is_never_half_written_under_its_name(tmp_path, monkeypatch):
    from model import media

    clip = StubGenerator().generate(Request(text="a few words"))

    def broken_append(self, video, audio):
        raise OSError("disk full")

    monkeypatch.setattr(media.Mp4Writer, "append", broken_append)
    import pytest

    with pytest.raises(OSError):
        write_mp4(tmp_path / "0001.mp4", clip)
    assert list(tmp_path.iterdir()) == []


async def test_the_receiver_rebuilds_an_unfinished_call_recording_when_it_starts(tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    from receiver.app import make_app
    from receiver.config import ReceiverConfig

    folder = tmp_path / "sess-crashed"
    recorder = SessionRecorder(folder)
    recorder.write(1, StubGenerator().generate(Request(text="one")))
    recorder._session._container.close()  # the process "died": the partial file stays, never renamed
    config = ReceiverConfig(tokens=frozenset({"t" * 32}), out_dir=tmp_path, port=0)
    async with TestClient(TestServer(make_app(config, generator=StubGenerator()))) as client:
        assert (await client.get("/health")).status == 200
        assert (folder / "session.mp4").is_file() and not (folder / ".session.mp4.part").exists()
