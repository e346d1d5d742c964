"""Offline encodes of the same clips with PyAV (FFmpeg) and Codec2: bytes and quality per setting.

Bit rates count the codec's bitstream only (packet bytes, no container), over the media length.
Video is measured at the paper's 64x64 / 16 fps, at textcall's output of 256x256 / 16 fps (what a
user would otherwise send at the size they see) and at GRID's 360x288 / 25 fps (the clips resized
bicubically, frames repeated to 25 fps); PSNR and SSIM compare decoded luma with the source at the
same size. Audio (16 kHz mono) is compared by log-spectral distance after removing codec delay.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from model import resample
from receiver.report import quality
from receiver.report.model import ACCEPTABLE_LSD_DB, ACCEPTABLE_PSNR_DB, ACCEPTABLE_SSIM, Baseline

logger = logging.getLogger(__name__)

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise


@dataclass(frozen=True)
class VideoSetting:
    codec: str  # label: "H.264", "VP8", "VP9", "AV1"
    encoder: str  # FFmpeg encoder name
    decoder: str
    setting: str  # what the sweep varies, for the table
    options: tuple[tuple[str, str], ...] = ()
    bit_rate: int | None = None


@dataclass(frozen=True)
class AudioSetting:
    codec: str  # "Opus", "AAC", "Codec2"
    setting: str
    bit_rate: int = 0  # FFmpeg target; Codec2: the mode


SIZES = {"64x64@16": (64, 64, 16), "256x256@16": (256, 256, 16), "360x288@25": (360, 288, 25)}


def video_settings(size: str, quick: bool) -> list[VideoSetting]:
    small = size == "64x64@16"
    x264 = lambda crf: VideoSetting("H.264", "libx264", "h264", f"crf {crf}",  # noqa: E731
                                    (("crf", str(crf)), ("preset", "medium")))
    vp8 = lambda kbps: VideoSetting("VP8", "libvpx", "vp8", f"{kbps} kb/s",  # noqa: E731
                                    (("deadline", "good"), ("cpu-used", "2")), kbps * 1000)
    vp9 = lambda crf: VideoSetting("VP9", "libvpx-vp9", "vp9", f"crf {crf}",  # noqa: E731
                                   (("crf", str(crf)), ("b", "0"), ("deadline", "good"), ("cpu-used", "4")))
    av1 = lambda crf: VideoSetting("AV1", "libsvtav1", "libdav1d", f"crf {crf}",  # noqa: E731
                                   (("crf", str(crf)), ("preset", "8")))
    if quick:
        return [x264(28), vp8(32 if small else 128), vp9(40), av1(45)]
    return (
        [x264(c) for c in (18, 23, 28, 33, 38, 43)]
        + [vp8(k) for k in ((8, 16, 32, 64, 128) if small else (32, 64, 128, 256, 512))]
        + [vp9(c) for c in (30, 40, 50, 60)]
        + [av1(c) for c in (35, 45, 55)]
    )


def audio_settings(quick: bool) -> list[AudioSetting]:
    opus = [6, 8, 12, 16, 24, 32] if not quick else [6, 16]
    aac = [16, 24, 32] if not quick else [24]
    codec2 = [450, 700, 1200, 1600, 2400, 3200] if not quick else [450, 700, 3200]
    return (
        [AudioSetting("Opus", f"{k} kb/s", k * 1000) for k in opus]
        + [AudioSetting("AAC", f"{k} kb/s", k * 1000) for k in aac]
        + [AudioSetting("Codec2", CODEC2_NAMES.get(m, str(m)), m) for m in codec2]
    )


# Codec2's modes by their nominal rate: bits per frame and frame length (libcodec2's own tables;
# 450 and 700C code 40 ms frames). Its true rate is bits / frame length: 700C is 28 bits per 40 ms,
# 700 b/s (a byte-rounded count would say 800).
CODEC2_NAMES = {450: "450", 700: "700C", 1200: "1200", 1600: "1600", 2400: "2400", 3200: "3200"}
CODEC2_FRAMES = {450: (18, 0.040), 700: (28, 0.040), 1200: (48, 0.040), 1600: (64, 0.040),
                 2400: (48, 0.020), 3200: (64, 0.020)}
# RTP (12) + SRTP authentication tag (10, AES_CM_128_HMAC_SHA1_80) + UDP/IPv4 (28) per packet:
# what one Codec2 frame per packet would cost on a call (computed: aiortc has no Codec2 payload format)
RTP_SRTP_UDP_BYTES = 12 + 10 + 28


def codec2_all_in_bps(mode: int) -> float:
    bits, seconds = CODEC2_FRAMES[mode]
    return round((math.ceil(bits / 8) + RTP_SRTP_UDP_BYTES) * 8 / seconds, 1)


def resample_video(frames: np.ndarray, fps: int, size: str) -> tuple[np.ndarray, int]:
    """The clip at one of :data:`SIZES` (bicubic resizing, area when shrinking; nearest-frame rate change)."""
    width, height, rate = SIZES[size]
    if frames.shape[1:3] == (height, width) and fps == rate:
        return frames, fps
    count = int(round(frames.shape[0] * rate / fps))
    picks = np.minimum((np.arange(count) * fps / rate).astype(int), frames.shape[0] - 1)
    shrink = width < frames.shape[2] or height < frames.shape[1]
    out = np.stack([cv2.resize(frames[i], (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
                    for i in picks])
    return out, rate


def encode_video(frames: np.ndarray, fps: int, setting: VideoSetting) -> tuple[int, np.ndarray]:
    """(bitstream bytes, decoded RGB frames) for ``frames`` uint8 ``[F, H, W, 3]``."""
    height, width = frames.shape[1:3]
    encoder = av.CodecContext.create(setting.encoder, "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    if setting.bit_rate:
        encoder.bit_rate = setting.bit_rate
    encoder.options = dict(setting.options)
    encoder.thread_count = 1
    packets = []
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    size = sum(packet.size for packet in packets)
    decoder = av.CodecContext.create(setting.decoder, "r")
    if encoder.extradata:
        decoder.extradata = encoder.extradata
    decoded = []
    for packet in packets:
        decoded.extend(decoder.decode(packet))
    decoded.extend(decoder.decode(None))
    images = [f.to_ndarray(format="rgb24") for f in decoded]
    if len(images) != len(frames):
        raise RuntimeError(f"{setting.codec} {setting.setting}: {len(images)} frames decoded of {len(frames)}")
    return size, np.stack(images)


def encode_audio(audio: np.ndarray, rate: int, setting: AudioSetting) -> tuple[int, np.ndarray]:
    """(bitstream bytes, decoded float32 audio at ``rate``) for mono float32 ``audio``."""
    name = {"Opus": "libopus", "AAC": "aac"}[setting.codec]
    encoder = av.CodecContext.create(name, "w")
    encoder.sample_rate = rate
    encoder.layout = "mono"
    encoder.format = "s16" if name == "libopus" else "fltp"
    encoder.bit_rate = setting.bit_rate
    encoder.time_base = Fraction(1, rate)
    if name == "libopus":
        encoder.options = {"application": "voip"}
    encoder.open()
    chunk = encoder.frame_size or 1024
    packets = []
    samples = np.clip(audio, -1, 1).astype(np.float32)
    padded = np.pad(samples, (0, (-samples.size) % chunk))
    for start in range(0, padded.size, chunk):
        piece = padded[start : start + chunk]
        if encoder.format.name == "s16":
            frame = av.AudioFrame.from_ndarray((piece * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
        else:
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    size = sum(packet.size for packet in packets)
    decoder = av.CodecContext.create(name, "r")
    decoder.sample_rate = rate
    decoder.layout = "mono"
    if encoder.extradata:
        decoder.extradata = encoder.extradata
    pieces, decoded_rate = [], rate
    for packet in packets:
        for frame in decoder.decode(packet):
            pieces.append(_mono_float(frame))
            decoded_rate = frame.sample_rate  # FFmpeg's Opus decoder always gives 48 kHz
    decoded = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if decoded_rate != rate:
        decoded = resample(decoded, decoded_rate, rate)
    return size, decoded


def _mono_float(frame: av.AudioFrame) -> np.ndarray:
    data = frame.to_ndarray()
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768
    if frame.format.is_planar:
        return data.mean(axis=0).astype(np.float32)
    return data.reshape(-1, len(frame.layout.channels)).mean(axis=1).astype(np.float32)


def codec2_available() -> str | None:
    """None when pycodec2 imports, else why not."""
    try:
        import pycodec2  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


class _Intelligibility:
    """Word error rates of whole spoken lines through a narrow-band codec, by an offline ASR loaded
    on first use (``receiver.report.asr``), with the same lines at 8 kHz uncoded as its floor."""

    def __init__(self, spoken: list[tuple[str, np.ndarray]], rate: int) -> None:
        self.spoken, self.rate = spoken, rate
        self._asr = None
        self.why = "" if spoken else "no whole spoken line in the clips (the stub's tones, or too short)"
        self.floor: float | None = None
        self._narrow: list[tuple[str, np.ndarray]] | None = None

    def _ready(self) -> bool:
        from receiver.report import asr

        if self.why:
            return False
        if self._asr is None:
            self._asr, self.why = asr.load_asr()
            if self._asr is None:
                return False
            self.floor, _ = self.rate_of(lambda pcm: pcm)
        return True

    def rate_of(self, codec) -> tuple[float, int]:
        """(WER, words) of the lines through ``codec``: int16 8 kHz PCM -> int16 8 kHz PCM."""
        from receiver.report import asr

        if self._narrow is None:  # each line at 8 kHz once, for every mode
            self._narrow = [(text, (np.clip(resample(audio, self.rate, 8000), -1, 1) * 32767).astype(np.int16))
                            for text, audio in self.spoken]
        lines = [(text, resample(codec(pcm).astype(np.float32) / 32768, 8000, 16000)) for text, pcm in self._narrow]
        return asr.word_error_rate(self._asr, lines)

    def measure(self, codec) -> tuple[float, int] | None:
        return self.rate_of(codec) if self._ready() else None


def _codec2_baseline(audio: np.ndarray, rate: int, mode: int, intelligibility: _Intelligibility | None = None) -> Baseline:
    """Codec2 at its true rate, judged narrow-band: by the word error rate of an offline ASR on whole
    spoken lines through it (acceptable: <= 10 %), where an ASR is installed and the clips are speech;
    otherwise by the log-spectral distance of what it decodes against the source, both at 8 kHz
    (Codec2 codes 0-4 kHz; a full-band measure would fail it for the band it never claims). A vocoder
    resynthesises speech, so the distance stays at 5-7 dB at every rate, understandable or not. All
    in: one frame per RTP/SRTP packet (computed)."""
    name = CODEC2_NAMES.get(mode, str(mode))
    bits, frame_seconds = CODEC2_FRAMES[mode]
    nominal = round(bits / frame_seconds, 1)
    common = dict(audio_bits_per_second=nominal, resolution="8 kHz mono", setting=name,
                  udp_bits_per_second=codec2_all_in_bps(mode))
    why = codec2_available()
    if why is not None:
        return Baseline("offline audio", f"Codec2 {name}", nominal, note=f"pycodec2 not installed: {why}", **common)
    import pycodec2

    try:
        codec = pycodec2.Codec2(mode)
    except Exception as exc:  # pycodec2 4.1's libcodec2 is built without the 450 modes
        return Baseline("offline audio", f"Codec2 {name}", nominal, **common,
                        note=f"quality not measured: this libcodec2 has no {name} mode ({type(exc).__name__}); "
                        "its nominal rate is shown")
    narrow = resample(audio, rate, 8000)
    pcm = (np.clip(narrow, -1, 1) * 32767).astype(np.int16)
    n = codec.samples_per_frame()

    def through(line: np.ndarray) -> np.ndarray:
        """int16 8 kHz PCM through the codec, frame by frame (padded to whole frames)."""
        padded = np.pad(line, (0, (-line.size) % n))
        return np.concatenate([codec.decode(codec.encode(padded[s : s + n])) for s in range(0, padded.size, n)])

    pcm = np.pad(pcm, (0, (-pcm.size) % n))
    frames = pcm.size // n
    decoded = through(pcm).astype(np.float32) / 32768
    reference = pcm.astype(np.float32) / 32768
    lsd = quality.log_spectral_distance(reference, quality.align_audio(reference, decoded, 8000), 8000)
    true_rate = round(codec.bits_per_frame() * frames / (pcm.size / 8000), 1)
    common = {**common, "audio_bits_per_second": true_rate}

    from receiver.report.asr import ACCEPTABLE_WER

    measured = intelligibility.measure(through) if intelligibility is not None else None
    if measured is None:
        why = intelligibility.why if intelligibility is not None else "no spoken lines given"
        return Baseline("offline audio", f"Codec2 {name}", true_rate, audio_lsd_db=round(lsd, 2),
                        acceptable=bool(lsd <= ACCEPTABLE_LSD_DB), **common,
                        note=f"narrow-band (8 kHz) log-spectral distance; word error rate not measured: {why}")
    wer, total = measured
    return Baseline("offline audio", f"Codec2 {name}", true_rate, audio_lsd_db=round(lsd, 2), audio_wer=round(wer, 3),
                    acceptable=bool(wer <= ACCEPTABLE_WER), **common,
                    note=f"judged by intelligibility: Whisper tiny.en word error rate {wer:.1%} on "
                    f"{len(intelligibility.spoken)} lines ({total} words; the same lines at 8 kHz uncoded "
                    f"{intelligibility.floor:.1%}); acceptable <= {ACCEPTABLE_WER:.0%}")


def run_offline(video: np.ndarray, fps: int, audio: np.ndarray, rate: int, *, quick: bool,
                progress=None, spoken: list[tuple[str, np.ndarray]] | None = None) -> list[Baseline]:
    """Every video and audio setting on these frames and samples. ``spoken``: whole lines of that
    speech (text, audio at ``rate``), for Codec2's word error rate (:mod:`receiver.report.asr`)."""
    intelligibility = _Intelligibility(spoken or [], rate)
    seconds = video.shape[0] / fps
    results: list[Baseline] = []
    for size in SIZES:
        source, size_fps = resample_video(video, fps, size)
        for setting in video_settings(size, quick):
            try:
                nbytes, decoded = encode_video(source, size_fps, setting)
            except Exception as exc:  # an encoder this FFmpeg build lacks, or refuses this size
                logger.warning("%s %s at %s failed: %s", setting.codec, setting.setting, size, exc)
                results.append(Baseline("offline video", f"{setting.codec} {setting.setting}", None,
                                        resolution=size, setting=setting.setting, note=f"failed: {exc}"))
            else:
                bps = 8 * nbytes / seconds
                p, s = quality.psnr(source, decoded), quality.ssim(source, decoded)
                results.append(Baseline(
                    "offline video", f"{setting.codec} {setting.setting}", round(bps, 1),
                    video_bits_per_second=round(bps, 1), resolution=size, setting=setting.setting,
                    psnr_db=round(float(p), 2), ssim=round(float(s), 4),
                    acceptable=bool(p >= ACCEPTABLE_PSNR_DB and s >= ACCEPTABLE_SSIM),
                ))
            if progress is not None:
                progress()
    for setting in audio_settings(quick):
        if setting.codec == "Codec2":
            results.append(_codec2_baseline(audio, rate, setting.bit_rate, intelligibility))
            if progress is not None:
                progress()
            continue
        try:
            nbytes, decoded = encode_audio(audio, rate, setting)
        except Exception as exc:
            logger.warning("%s %s failed: %s", setting.codec, setting.setting, exc)
            results.append(Baseline("offline audio", f"{setting.codec} {setting.setting}", None,
                                    setting=setting.setting, note=f"failed: {exc}"))
        else:
            bps = 8 * nbytes / (audio.size / rate)
            lsd = quality.log_spectral_distance(audio, quality.align_audio(audio, decoded, rate), rate)
            results.append(Baseline(
                "offline audio", f"{setting.codec} {setting.setting}", round(bps, 1),
                audio_bits_per_second=round(bps, 1), resolution="16 kHz mono", setting=setting.setting,
                audio_lsd_db=round(lsd, 2), acceptable=bool(lsd <= ACCEPTABLE_LSD_DB),
            ))
        if progress is not None:
            progress()
    return results
