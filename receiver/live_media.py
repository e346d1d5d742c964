"""Live media for the browser viewer: each chunk as a fragmented-MP4 media segment, the moment it is made.

A browser plays these with Media Source Extensions: the page appends the session's *init segment*
(``ftyp`` + ``moov``: H.264 and Opus track descriptions) once, then one *media segment* (``moof`` +
``mdat``) per chunk, in order, and the video element plays while later chunks are still being
generated (``receiver/static/viewer.js``).

Why a muxer per chunk: FFmpeg's MP4 muxer writes a fragment only when the next one starts (or at
close), and PyAV cannot send it the empty packet that would flush one, so a single long-lived muxer
hands out every chunk one chunk late. ``LiveEncoder`` keeps one H.264 and one Opus encoder per
session (so the picture and the sound are one continuous stream, without a restart click at chunk
edges), and muxes each chunk's packets with a fresh, throw-away muxer that is closed at once; the
segment's decode times (``tfdt``) and sequence number (``mfhd``) are then set to the session's
timeline, which keeps growing across utterances. Both tracks count time in 48 kHz ticks (Opus in
MP4 must be 48 kHz for Chromium; a 16 fps frame is exactly 3,000 ticks), so nothing drifts. Every
segment starts with an IDR frame, so a page that opens late can start at any segment.

The Opus encoder's pre-skip (312 samples) stays on the audio timeline and the video is shifted by as
much, so the two stay in sync and no time is negative (no edit list, which MSE would ignore). Opus
holds back under 10 ms of each chunk's audio until the next chunk; the last 10 ms of a session are
never sent (the recordings, not this stream, are the record).
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import numpy as np

TICKS = 48_000  # per second, both tracks
_FLAGS = {"movflags": "frag_custom+empty_moov+default_base_moof"}
_VIDEO_OPTIONS = {
    "preset": "veryfast",
    "tune": "zerolatency",  # no frame held back: a chunk's frames leave the encoder with it
    "profile": "baseline",  # what every MSE implementation decodes
    "forced-idr": "1",
    "threads": "1",
    "x264-params": "keyint=infinite:scenecut=0",  # the only keyframes are the ones asked for, per chunk
}
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"moof", b"traf", b"mvex"}


class _Buffer(io.RawIOBase):
    """A write-only file object that keeps what a muxer writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def boxes(data: bytes | bytearray, start: int = 0, end: int | None = None):
    """``(type, payload start, box end)`` of the boxes in ``data[start:end]`` (one level)."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise ValueError(f"corrupt box {kind!r} at {pos}")
        yield kind, pos + header, pos + size
        pos += size


def find(data: bytes | bytearray, path: list[bytes], start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Payload ranges of every box at ``path`` (e.g. ``[b"moof", b"traf", b"tfdt"]``)."""
    out: list[tuple[int, int]] = []
    for kind, s, e in boxes(data, start, end):
        if kind == path[0]:
            out.extend([(s, e)] if len(path) == 1 else find(data, path[1:], s, e))
    return out


def decode_times(segment: bytes | bytearray) -> dict[int, int]:
    """A media segment's base decode time per track id (in ``TICKS``)."""
    out = {}
    for s, e in find(segment, [b"moof", b"traf"]):
        track = struct.unpack_from(">I", segment, find(segment, [b"tfhd"], s, e)[0][0] + 4)[0]
        t = find(segment, [b"tfdt"], s, e)[0][0]
        out[track] = struct.unpack_from(">Q" if segment[t] == 1 else ">I", segment, t + 4)[0]
    return out


class LiveEncoder:
    """One session's live stream: ``init`` (bytes), then ``encode(video, audio)`` per chunk -> media segment.

    ``video``: uint8 ``[n, H, W, 3]`` RGB (even H and W) at ``fps``; ``audio``: float32 ``[n * rate / fps]``
    mono at ``sample_rate``. Not thread-safe: one thread encodes a session's chunks, in order.
    """

    def __init__(self, width: int, height: int, fps: int = 16, sample_rate: int = 16_000) -> None:
        import av

        if width % 2 or height % 2 or width < 2 or height < 2:
            raise ValueError(f"H.264 in 4:2:0 needs even frame sizes, got {width}x{height}")
        if TICKS % fps or sample_rate % fps:
            raise ValueError(f"{fps} fps does not divide {TICKS} ticks and {sample_rate} Hz")
        self.width, self.height, self.fps, self.sample_rate = width, height, fps, sample_rate
        self._tick = Fraction(1, TICKS)
        self._frame_ticks = TICKS // fps
        # A muxer never given a packet: it owns the encoders, and its header is the init segment.
        self._out = _Buffer()
        self._owner = av.open(self._out, "w", format="mp4", options=_FLAGS)
        video = self._owner.add_stream("libx264", rate=fps, options=_VIDEO_OPTIONS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = self._tick
        audio = self._owner.add_stream("libopus", rate=TICKS, layout="mono", options={"frame_duration": "10", "b": "32k"})
        audio.time_base = self._tick
        self._video, self._audio = video, audio
        self._owner.start_encoding()
        self.init = bytes(self._out.data)
        self.mime = f'video/mp4; codecs="{self._avc1()}, opus"'
        self.frames = 0  # video frames encoded
        self.segments = 0
        self._samples = 0  # audio samples given
        self._audio_ticks = 0  # audio encoded, in ticks
        self._video_start: int | None = None  # where frame 0 sits (the Opus pre-skip)
        self._closed = False

    def _avc1(self) -> str:
        """The RFC 6381 codec string of the H.264 track (``avc1.PPCCLL`` from its ``avcC`` box)."""
        for s, e in find(self.init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]):
            at = self.init.find(b"avcC", s, e)
            if at >= 0:  # avcC payload: version, profile, compatibility, level
                return "avc1." + self.init[at + 5 : at + 8].hex()
        raise RuntimeError("the H.264 encoder wrote no avcC box")

    @property
    def seconds(self) -> float:
        """Video on the session's timeline so far."""
        return self.frames / self.fps

    def encode(self, video: np.ndarray, audio: np.ndarray) -> bytes:
        import av

        if self._closed:
            raise RuntimeError("the live encoder is closed")
        n = len(video)
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[1:] != (self.height, self.width, 3) or n == 0:
            raise ValueError(f"expected uint8 [n, {self.height}, {self.width}, 3], got {video.dtype} {video.shape}")
        if len(audio) * self.fps != n * self.sample_rate:
            raise ValueError(f"{len(audio)} samples do not span {n} frames")
        packets_v = []
        for i, rgb in enumerate(video):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = (self.frames + i) * self._frame_ticks, self._tick
            if i == 0:
                frame.pict_type = av.video.frame.PictureType.I  # every segment can start a page
            packets_v += self._video.encode(frame)
        if len(packets_v) != n:
            raise RuntimeError(f"the H.264 encoder held frames back ({len(packets_v)} of {n} out)")
        sound = av.AudioFrame.from_ndarray(np.asarray(audio, np.float32)[None, :], format="flt", layout="mono")
        sound.sample_rate = self.sample_rate
        sound.pts, sound.time_base = self._samples, Fraction(1, self.sample_rate)
        self._samples += len(audio)
        packets_a = self._audio.encode(sound)
        if self._video_start is None:
            self._video_start = -packets_a[0].pts if packets_a else 0  # the pre-skip, as a positive shift
        segment = self._mux(packets_v, packets_a)
        self.segments += 1
        self._stamp(segment, {1: self._video_start + self.frames * self._frame_ticks, 2: self._audio_ticks})
        self.frames += n
        self._audio_ticks += sum(p.duration for p in packets_a)
        return bytes(segment)

    def _mux(self, video, audio) -> bytearray:
        """``moof`` + ``mdat`` of these packets, from a fresh muxer (their times from 0; ``_stamp`` sets them)."""
        import av

        out = _Buffer()
        muxer = av.open(out, "w", format="mp4", options=_FLAGS)
        streams = (muxer.add_stream_from_template(self._video), muxer.add_stream_from_template(self._audio))
        step = self._frame_ticks
        for i, p in enumerate(video):
            p.stream, p.time_base, p.pts, p.dts, p.duration = streams[0], self._tick, i * step, i * step, step
        t = 0
        for p in audio:
            p.stream, p.time_base, p.pts, p.dts = streams[1], self._tick, t, t
            t += p.duration
        muxer.mux(sorted(video + audio, key=lambda p: p.dts))
        muxer.close()
        data = out.data
        kinds = [(k, s, e) for k, s, e in boxes(data)]
        start = next(s - 8 for k, s, _ in kinds if k == b"moof")
        end = max(e for k, _, e in kinds if k == b"mdat")
        return bytearray(data[start:end])

    def _stamp(self, segment: bytearray, times: dict[int, int]) -> None:
        for s, e in find(segment, [b"moof"]):
            struct.pack_into(">I", segment, find(segment, [b"mfhd"], s, e)[0][0] + 4, self.segments)
            for ts, te in find(segment, [b"traf"], s, e):
                track = struct.unpack_from(">I", segment, find(segment, [b"tfhd"], ts, te)[0][0] + 4)[0]
                at = find(segment, [b"tfdt"], ts, te)[0][0]
                if segment[at] == 1:
                    struct.pack_into(">Q", segment, at + 4, times[track])
                else:
                    struct.pack_into(">I", segment, at + 4, times[track])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._owner.close()
            except Exception:  # nothing was ever muxed through it; closing may complain
                pass
