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
