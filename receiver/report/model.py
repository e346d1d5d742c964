"""What a bitrate report holds: text-link measurements, media baselines, and the comparison."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def _bps(n_bytes: int | float, seconds: float) -> float | None:
    return round(8 * n_bytes / seconds, 2) if seconds > 0 else None


@dataclass(frozen=True)
class TextLinkResult:
    """One way of running the text link, measured. "up" is sender -> receiver."""

    key: str
    label: str
    speaking_seconds: float  # the script said at `wpm` (0 for a recorded session: use media)
    media_seconds: float
    messages_up: int
    payload_up_bytes: int
    payload_down_bytes: int
    wire_up_bytes: int  # DTLS level, steady state (Hello to Bye)
    wire_down_bytes: int
    setup_up_bytes: int = 0  # before Hello: ICE/DTLS handshake, SCTP association, DCEP
    setup_down_bytes: int = 0
    close_up_bytes: int = 0  # Bye and teardown
    close_down_bytes: int = 0
    utterance_payload_bytes: int = 0
    batch_seconds: float = 0.0
    compress: bool = False
    quiet: bool = False
    wpm: float = 0.0
    lines: int = 0
    words: int = 0
    clips: int = 0
    breakdown_up: dict = field(default_factory=dict)  # label -> {"count", "bytes"}
    breakdown_down: dict = field(default_factory=dict)
    stun_up_bytes: int = 0  # below DTLS (ICE checks, consent freshness), not in the wire counts
    stun_down_bytes: int = 0
    source: str = "loopback"  # or "recorded session"
    # Steady state: bytes between the first and the last utterance's arrival over that time (whole
    # periods of talking; no Hello/Welcome, no tail). The bar is judged on wire_up over this.
    steady_up_bytes: int = 0
    steady_down_bytes: int = 0
    steady_seconds: float = 0.0
    # All in: every UDP datagram of the call (DTLS and STUN, each with its 28-byte UDP/IPv4 header)
    # from Hello to Bye, over that time (``call_seconds``); the setup before Hello apart.
    call_seconds: float = 0.0
    udp_up_bytes: int = 0
    udp_down_bytes: int = 0
    udp_setup_up_bytes: int = 0
    udp_setup_down_bytes: int = 0
    stun_udp_up_bytes: int = 0  # of udp_up_bytes: STUN (consent checks and responses) with their headers
    stun_udp_down_bytes: int = 0
    # the wait a line spends before it is sent (batching), as the sender measured it
    added_latency_mean_s: float = 0.0
    added_latency_max_s: float = 0.0

    @property
    def seconds(self) -> float:
        """The time the rates are over: speech at the script's pace, else the call's, else the media's."""
        return self.speaking_seconds or self.call_seconds or self.media_seconds

    def rates(self) -> dict[str, float | None]:
        s = self.seconds
        total_up = self.wire_up_bytes + self.setup_up_bytes + self.close_up_bytes
        total_down = self.wire_down_bytes + self.setup_down_bytes + self.close_down_bytes
        return {
            "payload_up": _bps(self.payload_up_bytes, s),
            "payload_down": _bps(self.payload_down_bytes, s),
            "utterance_payload": _bps(self.utterance_payload_bytes, s),
            "wire_up": _bps(self.wire_up_bytes, s),
            "wire_down": _bps(self.wire_down_bytes, s),
            "wire_both": _bps(self.wire_up_bytes + self.wire_down_bytes, s),
            "wire_up_with_setup": _bps(total_up, s),
            "wire_down_with_setup": _bps(total_down, s),
            "wire_up_per_media_second": _bps(self.wire_up_bytes, self.media_seconds),
            "steady_wire_up": _bps(self.steady_up_bytes, self.steady_seconds),
            "steady_wire_down": _bps(self.steady_down_bytes, self.steady_seconds),
            "steady_wire_both": _bps(self.steady_up_bytes + self.steady_down_bytes, self.steady_seconds),
            "stun_up": _bps(self.stun_up_bytes, s),
            "stun_down": _bps(self.stun_down_bytes, s),
            "udp_up": _bps(self.udp_up_bytes, self.call_seconds),
            "udp_down": _bps(self.udp_down_bytes, self.call_seconds),
            "udp_payload_up": _bps(self.utterance_payload_bytes, self.call_seconds),
        }

    def to_json(self) -> dict:
        rates = self.rates()
        return {**asdict(self), "seconds": self.seconds, "bits_per_second": rates,
                "udp_up_bps": rates["udp_up"], "udp_down_bps": rates["udp_down"],
                "added_latency_s": {"mean": self.added_latency_mean_s, "max": self.added_latency_max_s}}


@dataclass(frozen=True)
class Baseline:
    """Sending the media instead: one codec setting, measured on the same clips."""

    family: str  # "webrtc", "offline video", "offline audio", "offline av"
    name: str  # e.g. "VP8 + Opus, aiortc defaults"
    bits_per_second: float | None  # None: the encoder failed (see note)
    video_bits_per_second: float | None = None
    audio_bits_per_second: float | None = None
    resolution: str = ""  # "64x64@16" ...
    setting: str = ""  # "crf 28", "target 500 kb/s", ...
    # all in, as a call carries it: every UDP datagram with its header (SRTP + RTCP + DTLS + STUN for
    # WebRTC, measured; RTP/SRTP/UDP/IP per codec frame for Codec2, computed)
    udp_bits_per_second: float | None = None
    psnr_db: float | None = None
    ssim: float | None = None
    audio_lsd_db: float | None = None  # log-spectral distance of decoded audio vs source
    audio_wer: float | None = None  # word error rate of an offline ASR on the decoded speech (Codec2)
    acceptable: bool | None = None
    wire_bits_per_second: float | None = None  # WebRTC: DTLS/SRTP level, RTP headers and RTCP included
    note: str = ""

    def to_json(self) -> dict:
        return asdict(self)


# Thresholds for "still looks/sounds acceptable", stated in the report: common rules of thumb for
# small talking-head video (PSNR >= 30 dB, SSIM >= 0.90) and speech audio (LSD <= 2.5 dB).
ACCEPTABLE_PSNR_DB = 30.0
ACCEPTABLE_SSIM = 0.90
ACCEPTABLE_LSD_DB = 2.5
