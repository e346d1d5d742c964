"""The media baseline on the same aiortc stack: the clips streamed as real WebRTC tracks.

Two peer connections in this process, 127.0.0.1 only, no STUN server. The sending peer has a video
track (the clip frames at their own rate, paced in real time so that aiortc's encoders, REMB and
jitter buffers see what a live call shows them) and an audio track (20 ms frames); the receiving
peer decodes the video, kept for PSNR/SSIM. Bytes come from the sender's ``getStats()``:
``outbound-rtp`` bytesSent per kind (RTP payload), and the transport's bytesSent (SRTP at the
DTLS level: RTP headers, SRTP tags and RTCP included).

aiortc's defaults (aiortc 1.16, ``aiortc/codecs``): VP8 starts at 500 kb/s (clamped to 250 kb/s ..
1.5 Mb/s as REMB feedback moves it), H.264 at 1 Mb/s (500 kb/s .. 3 Mb/s), Opus fixed at 96 kb/s
(48 kHz stereo, application voip). "Low" runs pin the video encoder's target by setting those
module constants (default = min = max) and Opus's ``bit_rate``; :func:`verify_defaults` reads the
installed constants so the report states what was actually in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from protocol.rtc import UDP_IPV4_HEADER
from receiver.report import quality
from receiver.report.model import ACCEPTABLE_PSNR_DB, ACCEPTABLE_SSIM, Baseline

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000
AUDIO_FRAME_SECONDS = 0.020


def verify_defaults() -> dict[str, int]:
    """The bit-rate constants of the installed aiortc (what "defaults" means in this report)."""
    import inspect

    from aiortc.codecs import h264, opus, vpx

    source = inspect.getsource(opus.OpusEncoder.__init__)
    opus_rate = next(
        (int(line.split("=")[1].strip()) for line in source.splitlines() if "codec.bit_rate" in line), 0
    )
    return {
        "vp8_default": vpx.DEFAULT_BITRATE, "vp8_min": vpx.MIN_BITRATE, "vp8_max": vpx.MAX_BITRATE,
        "h264_default": h264.DEFAULT_BITRATE, "h264_min": h264.MIN_BITRATE, "h264_max": h264.MAX_BITRATE,
        "opus": opus_rate,
    }  # fmt: skip


@dataclass(frozen=True)
class MediaSetting:
    video: str  # "VP8" | "H264"
    label: str
    video_bitrate: int | None = None  # None: aiortc's default and REMB clamps
    opus_bitrate: int | None = None  # None: aiortc's 96 kb/s


@dataclass
class _Received:
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (pts, rgb)
    audio_frames: int = 0


class ClipVideoTrack(VideoStreamTrack):
    """Frames ``[F, H, W, 3]`` of the clip as a video track, paced at ``fps`` from the first recv();
    timestamps are frame index / fps on the 90 kHz video clock. Ends after the last frame."""

    def __init__(self, frames: np.ndarray, fps: int) -> None:
        super().__init__()
        self.frames, self.fps = frames, fps
        self._index = 0
        self._begin: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._index >= len(self.frames):
            self.stop()
            raise MediaStreamError
        if self._begin is None:
            self._begin = time.monotonic()
        await asyncio.sleep(max(0.0, self._begin + self._index / self.fps - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(self.frames[self._index]), format="rgb24")
        frame.pts = self._index * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._index += 1
        return frame


class ClipAudioTrack(AudioStreamTrack):
    """The clip's mono float audio as 20 ms s16 frames, paced in real time. Ends after the last."""

    def __init__(self, audio: np.ndarray, rate: int) -> None:
        super().__init__()
        self.rate = rate
        self.step = int(rate * AUDIO_FRAME_SECONDS)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        self.pcm = np.pad(pcm, (0, (-pcm.size) % self.step))
        self._offset = 0
        self._begin: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._offset >= self.pcm.size:
            self.stop()
            raise MediaStreamError
        if self._begin is None:
            self._begin = time.monotonic()
        await asyncio.sleep(max(0.0, self._begin + self._offset / self.rate - time.monotonic()))
        piece = self.pcm[None, self._offset : self._offset + self.step]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._offset
        frame.time_base = fractions.Fraction(1, self.rate)
        self._offset += self.step
        return frame


@contextlib.contextmanager
def pinned_bitrates(vp8: int | None = None, h264: int | None = None, opus_rate: int | None = None):
    """Pin aiortc's encoder targets for the connections made inside (restored on exit)."""
    from aiortc.codecs import h264 as h264_mod
    from aiortc.codecs import opus as opus_mod
    from aiortc.codecs import vpx as vpx_mod

    saved = []
    for module, value in ((vpx_mod, vp8), (h264_mod, h264)):
        if value is not None:
            for name in ("DEFAULT_BITRATE", "MIN_BITRATE", "MAX_BITRATE"):
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, value)
    init = opus_mod.OpusEncoder.__init__
    if opus_rate is not None:
        def pinned_init(encoder) -> None:
            init(encoder)
            encoder.codec.bit_rate = opus_rate

        opus_mod.OpusEncoder.__init__ = pinned_init
    try:
        yield
    finally:
        opus_mod.OpusEncoder.__init__ = init
        for module, name, value in saved:
            setattr(module, name, value)


async def stream(video: np.ndarray, fps: int, audio: np.ndarray, rate: int, setting: MediaSetting) -> Baseline:
    """Stream the clip once over a fresh loopback connection; bytes and received quality."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender

    from protocol.rtc import StunCounter, loopback_only

    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received = _Received()
    consumers: list[asyncio.Task] = []

    @receiver.on("track")
    def on_track(track) -> None:
        consumers.append(asyncio.get_running_loop().create_task(_consume(track, received)))

    try:
        video_track, audio_track = ClipVideoTrack(video, fps), ClipAudioTrack(audio, rate)
        transceiver = sender.addTransceiver(video_track, direction="sendonly")
        mime = f"video/{setting.video}"
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == mime]
        if not codecs:
            raise RuntimeError(f"aiortc offers no {mime}")
        transceiver.setCodecPreferences(codecs)
        sender.addTransceiver(audio_track, direction="sendonly")
        loopback_only(sender)
        await sender.setLocalDescription(await sender.createOffer())
        stun = StunCounter()  # the sender's STUN datagrams: all in, as the network carries the call
        stun.attach(sender)
        await receiver.setRemoteDescription(sender.localDescription)
        loopback_only(receiver)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        media_seconds = video.shape[0] / fps
        deadline = time.monotonic() + media_seconds + 20
        while video_track.readyState != "ended" or audio_track.readyState != "ended":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{setting.label}: streaming did not finish")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the last packets and their decoding
        stats = await sender.getStats()
    finally:
        for task in consumers:
            task.cancel()
        await sender.close()
        await receiver.close()
    video_bytes = audio_bytes = transport_bytes = transport_packets = 0
    for entry in stats.values():
        if entry.type == "outbound-rtp":
            if entry.kind == "video":
                video_bytes += entry.bytesSent
            else:
                audio_bytes += entry.bytesSent
        elif entry.type == "transport":
            transport_bytes += entry.bytesSent
            transport_packets += entry.packetsSent
    udp_bytes = transport_bytes + stun.sent_bytes + UDP_IPV4_HEADER * (transport_packets + stun.sent_packets)
    psnr_db, ssim_value = _received_quality(video, fps, received.frames)
    video_bps, audio_bps = 8 * video_bytes / media_seconds, 8 * audio_bytes / media_seconds
    codec = "H.264" if setting.video == "H264" else setting.video
    acceptable = None
    if psnr_db is not None and ssim_value is not None:
        acceptable = bool(psnr_db >= ACCEPTABLE_PSNR_DB and ssim_value >= ACCEPTABLE_SSIM)
    return Baseline(
        family="webrtc",
        name=f"{codec} + Opus, {setting.label}",
        bits_per_second=round(video_bps + audio_bps, 1),
        video_bits_per_second=round(video_bps, 1),
        audio_bits_per_second=round(audio_bps, 1),
        resolution=f"{video.shape[2]}x{video.shape[1]}@{fps}",
        setting=setting.label,
        psnr_db=None if psnr_db is None else round(float(psnr_db), 2),
        ssim=None if ssim_value is None else round(float(ssim_value), 4),
        acceptable=acceptable,
        wire_bits_per_second=round(8 * transport_bytes / media_seconds, 1),
        udp_bits_per_second=round(8 * udp_bytes / media_seconds, 1),
        note=f"{len(received.frames)} of {video.shape[0]} frames received",
    )


async def _consume(track, received: _Received) -> None:
    try:
        while True:
            frame = await track.recv()
            if track.kind == "video":
                received.frames.append((frame.pts, frame.to_ndarray(format="rgb24")))
            else:
                received.audio_frames += 1
    except (MediaStreamError, asyncio.CancelledError):
        return


def _received_quality(video: np.ndarray, fps: int, frames: list[tuple[int, np.ndarray]]):
    """PSNR/SSIM of received frames against the source frames with the same timestamp (RTP
    timestamps keep their spacing; the first received frame is matched to its source frame by
    content among the first few, since the RTP timestamp origin is random)."""
    frames = [(pts, image) for pts, image in frames if image.shape == video.shape[1:]]
    if not frames:
        return None, None
    first_pts, first = frames[0]
    candidates = range(min(8, video.shape[0]))
    offset = min(candidates, key=lambda i: float(np.mean((video[i].astype(float) - first) ** 2)))
    pairs = []
    for pts, image in frames:
        index = offset + int(round(((pts - first_pts) % (1 << 32)) * fps / VIDEO_CLOCK))
        if 0 <= index < video.shape[0]:
            pairs.append((video[index], image))
    if not pairs:
        return None, None
    reference = np.stack([a for a, _ in pairs])
    decoded = np.stack([b for _, b in pairs])
    return quality.psnr(reference, decoded), quality.ssim(reference, decoded)


async def run_webrtc(video: np.ndarray, fps: int, audio: np.ndarray, rate: int, *,
                     low_targets: list[int], low_opus: int, progress=None) -> list[Baseline]:
    """VP8 and H.264 with Opus at aiortc's defaults, then pinned at each of ``low_targets`` (b/s)
    with Opus at ``low_opus``. The two codecs of each phase stream at the same time (separate
    connections); phases run one after the other, since pinning patches aiortc's constants."""
    defaults = [MediaSetting("VP8", "aiortc defaults"), MediaSetting("H264", "aiortc defaults")]
    results = list(await asyncio.gather(*(stream(video, fps, audio, rate, s) for s in defaults)))
    if progress is not None:
        progress(len(defaults))
    for target in low_targets:
        label = f"video pinned at {target / 1000:g} kb/s, Opus {low_opus / 1000:g} kb/s"
        low = [MediaSetting("VP8", label, target, low_opus), MediaSetting("H264", label, target, low_opus)]
        with pinned_bitrates(vp8=target, h264=target, opus_rate=low_opus):
            results += await asyncio.gather(*(stream(video, fps, audio, rate, s) for s in low))
        if progress is not None:
            progress(len(low))
    return results
