from __future__ import annotations

import numpy as np

from model.clip import Request
from model.stub import StubGenerator
from receiver.player import Player


def test_stub_is_deterministic_and_sized_by_text():
    stub = StubGenerator()
    a = stub.generate(Request(caption="A woman is talking", text="hello there, friend", seed=3))
    b = stub.generate(Request(caption="A woman is talking", text="hello there, friend", seed=3))
    assert np.array_equal(a.video, b.video) and np.array_equal(a.audio, b.audio)
    longer = stub.generate(Request(text="hello there, friend. " * 10))
    assert longer.seconds > a.seconds >= 1.0
    assert a.audio.size == a.video.shape[0] * a.sample_rate // a.fps


def test_player_without_devices_plays_on_the_wall_clock():
    clip = StubGenerator().generate(Request(text=""))
    player = Player(video=False, audio=False)
    player.play("test", clip)
    player.close()
    assert player.played == 1


def test_player_reports_missing_devices(monkeypatch, caplog):
    monkeypatch.setattr("receiver.player.has_display", lambda: False)
    monkeypatch.setattr("receiver.player.has_audio_output", lambda: False)
    assert Player.create() is None
    assert "recording only" in caplog.text


def test_the_timeline_plays_chunks_as_they_come_and_counts_stalls():
    from model.clip import split_clip
    from receiver.player import Timeline

    clip = StubGenerator().generate(Request(text="x" * 40))  # 2.4 s
    chunks = list(split_clip(clip, 12))  # 0.75 s each
    line = Timeline()
    assert line.read(160).max() == 0 and line.stalls == 0  # nothing started: silence, not a stall
    line.append("t", chunks[0].video, chunks[0].audio, chunks[0].last)
    assert np.array_equal(line.read(6000), clip.audio[:6000])
    title, frame = line.frame
    assert title == "t" and np.array_equal(frame, clip.video[5])  # the frame under the samples read (#6000 is frame 5)
    out = line.read(8000)  # 6000 left in the chunk, then the next is late: a stall of 2000 samples
    assert np.array_equal(out[:6000], clip.audio[6000:12000]) and not out[6000:].any()
    assert line.stalls == 1 and line.stalled_seconds == 2000 / 16000
    for chunk in chunks[1:]:
        line.append("t", chunk.video, chunk.audio, chunk.last)
    rest = np.concatenate([line.read(1000) for _ in range(40)])
    assert np.array_equal(rest[: len(clip.audio) - 12000], clip.audio[12000:])  # no sample lost to the stall
    assert line.stalls == 1 and line.utterances == 1  # silence after the last chunk is no stall
    assert np.array_equal(line.frame[1], clip.video[-1])


def test_the_timeline_drops_what_is_too_far_behind():
    from receiver.player import Timeline

    line = Timeline(limit_seconds=1.0)
    video, audio = np.zeros((16, 4, 4, 3), np.uint8), np.zeros(16000, np.float32)
    assert line.append("t", video, audio, False) and not line.append("t", video, audio, True)
    assert line.dropped == 1
