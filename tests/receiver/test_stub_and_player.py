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
