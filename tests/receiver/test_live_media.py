"""The live stream's fragmented MP4: segments made at once, on one timeline, decodable."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from receiver.live_media import TICKS, LiveEncoder, boxes, decode_times


def _chunk(n: int, k: int = 0):
    y, x = np.mgrid[0:64, 0:64]
    video = np.stack([np.stack([(x * 4 + 8 * (k + i)) % 256, y * 4, np.full_like(x, 128)], -1) for i in range(n)]).astype(np.uint8)
    t = (np.arange(n * 1000) + k * 12000) / 16000
    return video, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_segments_follow_each_other_on_one_timeline():
    encoder = LiveEncoder(64, 64)
    assert [k for k, _, _ in boxes(encoder.init)] == [b"ftyp", b"moov"]
    assert encoder.mime == 'video/mp4; codecs="avc1.42c00a, opus"'  # constrained baseline, level 1.0
    sizes = [12, 12, 5, 12, 1]  # utterances end on short chunks
    data, frames = encoder.init, 0
    for k, n in enumerate(sizes):
        segment = encoder.encode(*_chunk(n, k))
        assert [kind for kind, _, _ in boxes(segment)] == [b"moof", b"mdat"]  # a media segment, given at once
        times = decode_times(segment)
        assert times[1] - times[1 if k == 0 else 1] >= 0
        assert times[1] == 312 + frames * TICKS // 16  # the video after the Opus pre-skip, frame by frame
        assert abs(times[2] - frames * TICKS // 16) <= 480  # the audio where its samples are (Opus holds < 10 ms)
        frames += n
        data += segment
    assert encoder.frames == frames and encoder.seconds == pytest.approx(frames / 16)
    with av.open(io.BytesIO(data)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    with av.open(io.BytesIO(data)) as container:
        sound = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
    assert decoded == frames
    assert len(sound) >= frames * 3000 - 480 - 960  # 48 kHz: all but the frame Opus holds back
    encoder.close()
    with pytest.raises(RuntimeError, match="closed"):
        encoder.encode(*_chunk(1))


def test_bad_chunks_are_refused():
    with pytest.raises(ValueError, match="even"):
        LiveEncoder(63, 64)
    encoder = LiveEncoder(64, 64)
    video, audio = _chunk(4)
    with pytest.raises(ValueError, match="span"):
        encoder.encode(video, audio[:-1])
    with pytest.raises(ValueError, match="uint8"):
        encoder.encode(video[:, :32], audio)
