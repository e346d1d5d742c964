"""``textcall report``: measure the text link and the media baselines on the same clips, write the report."""

from __future__ import annotations

import asyncio
import datetime
import logging
import platform
from dataclasses import dataclass
from pathlib import Path

from protocol.rtc import SPARSE_CONSENT_INTERVAL, UDP_IPV4_HEADER
from receiver.report import textlink
from receiver.report.inputs import (  # what a report reads (imported from here by callers too)
    _join, find_session, load_recorded_media, parse_script, recorded_result, spoken_script,
)
from receiver.report.model import (
    ACCEPTABLE_LSD_DB,
    ACCEPTABLE_PSNR_DB,
    ACCEPTABLE_SSIM,
    Baseline,
    TextLinkResult,
)

logger = logging.getLogger(__name__)

BUILTIN_SCRIPT = Path(__file__).with_name("speech.txt")

ANCHORS = [
    "Published anchor (not our measurement): Txt2Vid (Tandon et al., 2021, 'Txt2Vid: Ultra-Low "
    "Bandwidth Video Conferencing through text') compared sending text against AV1 and H.264 video "
    "with AAC audio at 5-10 kb/s and reported savings of two to three orders of magnitude.",
]


@dataclass(frozen=True)
class ReportConfig:
    out_dir: Path
    recordings: Path | None = None  # a session folder (NNNN.mp4, session.jsonl, bitrate.json) or demo output
    script: Path | None = None  # utterances to speak over loopback (send --script format); neither
    # recordings nor script: the built-in two minutes of continuous speech (receiver/report/speech.txt)
    quick: bool = False  # a small sweep (tests)
    media: bool = True  # False: the text link only
    wpm: float = textlink.WPM
    max_media_seconds: float = 20.0  # media used for the baselines (the first seconds of the clips)
    # the script's lines spoken by this voice replace the stub's tones in the audio baselines ("" keeps
    # the tones); recordings keep their own speech
    speech_voice: str = "mixed"

    def __post_init__(self) -> None:
        if self.recordings is not None and self.script is not None:
            raise ValueError("give a recordings folder or --script FILE, not both")
        if self.recordings is not None and not self.recordings.is_dir():
            raise ValueError(f"{self.recordings} is not a folder")
        if self.script is not None and not self.script.is_file():
            raise ValueError(f"{self.script} is not a file")
        if not 30 <= self.wpm <= 1200:
            raise ValueError(f"words per minute must be in 30..1200, got {self.wpm}")
        if self.max_media_seconds <= 0:
            raise ValueError("max media seconds must be positive")


# ---------------------------------------------------------------------------------------- report


async def build_report(config: ReportConfig) -> dict:
    from tqdm import tqdm

    if config.recordings is not None:  # the session's own bytes, as its receiver counted them
        session = find_session(config.recordings)
        recorded = recorded_result(session)
        if recorded is None:
            raise ValueError(f"{session} has no bitrate.json (the receiver writes it when the session closes)")
        source = f"recorded session {session}"
        text = [recorded]
    else:
        script = config.script or BUILTIN_SCRIPT
        lines = parse_script(script)
        source = f"script {script}" if config.script else "built-in continuous speech (receiver/report/speech.txt)"
        keys = textlink.QUICK_OPTIONS if config.quick else tuple(o.key for o in textlink.OPTIONS)
        options = [o for o in textlink.OPTIONS if o.key in keys]
        speech = textlink.speaking_seconds(lines, config.wpm)
        with tqdm(total=round(speech), desc=f"text link ({len(options)} options at once)", unit="s of speech",
                  leave=False, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of speech") as bar:
            ticker = asyncio.get_running_loop().create_task(_tick(bar, speech))
            try:
                text, clips = await textlink.measure_text_link(
                    lines, options, work_dir=config.out_dir / "textlink", wpm=config.wpm)
            finally:
                ticker.cancel()
    baselines: list[Baseline] = []
    media_seconds = 0.0
    audio_source = ""
    spoken: list = []  # whole lines of the audio baselines' speech: (text, audio), for Codec2's word error rate
    if config.media:
        if config.recordings is not None:
            video, audio, fps, rate = load_recorded_media(session, config.max_media_seconds)
        else:
            rendered = clips[options[0].key]
            video, audio, fps, rate = _join(
                [(c.video, c.audio, c.fps, c.sample_rate) for c in rendered], config.max_media_seconds)
            if config.speech_voice:
                try:
                    audio, audio_source, spoken = spoken_script(lines, audio.size, rate, config.speech_voice)
                except Exception as exc:  # a missing voice package: the tones, said so in the report
                    logger.warning("audio baselines keep the stub's tones: the %s voice failed: %s",
                                   config.speech_voice, exc)
        media_seconds = video.shape[0] / fps
        baselines = await _baselines(video, fps, audio, rate, config.quick, spoken)
    return compose(text, baselines, source=source, media_seconds=media_seconds, quick=config.quick,
                   wpm=0.0 if config.recordings is not None else config.wpm, audio_source=audio_source)


async def _tick(bar, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        await asyncio.sleep(0.5)
        bar.n = min(seconds, loop.time() - start)
        bar.refresh()


async def _baselines(video, fps, audio, rate, quick: bool, spoken: list | None = None) -> list[Baseline]:
    from tqdm import tqdm

    from receiver.report import offline, webrtc

    count = len(offline.audio_settings(quick)) + sum(len(offline.video_settings(s, quick)) for s in offline.SIZES)
    with tqdm(total=count, desc="offline encodes", unit="setting", leave=False) as bar:
        results = await asyncio.to_thread(offline.run_offline, video, fps, audio, rate, quick=quick,
                                          progress=bar.update, spoken=spoken)
    opus_ok = [b for b in results if b.name.startswith("Opus") and b.acceptable]
    low_opus = min((int(b.setting.split()[0]) * 1000 for b in opus_ok), default=16000)
    results += _av_pairs(results)
    targets = [48_000] if quick else [12_000, 24_000, 48_000]
    with tqdm(total=2 + 2 * len(targets), desc="WebRTC streams (real time)", unit="stream", leave=False) as bar:
        results += await webrtc.run_webrtc(video, fps, audio, rate, low_targets=targets, low_opus=low_opus,
                                           progress=bar.update)
    return results


def _av_pairs(offline: list[Baseline]) -> list[Baseline]:
    """Audio and video together, as a call sends them: per video codec and size, its lowest
    acceptable setting with the lowest acceptable Opus and AAC settings (Txt2Vid's comparison)."""
    def cheapest(items):
        return min(items, key=lambda b: b.bits_per_second, default=None)

    audio = {codec: cheapest([b for b in offline if b.family == "offline audio" and b.acceptable
                              and b.name.startswith(codec)]) for codec in ("Opus", "AAC")}
    pairs = []
    keys = sorted({(b.name.split()[0], b.resolution) for b in offline if b.family == "offline video"})
    for codec, size in keys:
        video = cheapest([b for b in offline if b.family == "offline video" and b.acceptable
                          and b.name.split()[0] == codec and b.resolution == size])
        for sound in audio.values():
            if video is None or sound is None:
                continue
            pairs.append(Baseline(
                "offline av", f"{codec} {video.setting} + {sound.name}",
                round(video.bits_per_second + sound.bits_per_second, 1),
                video_bits_per_second=video.bits_per_second, audio_bits_per_second=sound.bits_per_second,
                resolution=size, setting=f"{video.setting} + {sound.setting}", psnr_db=video.psnr_db,
                ssim=video.ssim, audio_lsd_db=sound.audio_lsd_db, acceptable=True,
                note="lowest acceptable video and audio settings of this sweep"))
    return pairs


def _lowest_acceptable(baselines: list[Baseline], codec: str) -> Baseline | None:
    runs = [b for b in baselines if b.family == "webrtc" and b.name.startswith(codec)
            and b.setting != "aiortc defaults" and b.acceptable]
    return min(runs, key=lambda b: b.bits_per_second, default=None)


def compose(text: list[TextLinkResult], baselines: list[Baseline], *, source: str, media_seconds: float,
            quick: bool, wpm: float, audio_source: str = "") -> dict:
    """The report as a dict (report.json): results, factors, bars, notes."""
    from receiver.report.webrtc import verify_defaults

    bar_item = next((t for t in text if t.key == textlink.BAR_OPTION), None)
    reference = bar_item or text[-1]
    ref_rates = reference.rates()
    ref_wire = ref_rates["udp_up"] or ref_rates["steady_wire_up"] or ref_rates["wire_up"]  # all in when known
    ref_payload = ref_rates["udp_payload_up"] or ref_rates["payload_up"]
    rows = []
    for b in baselines:
        row = b.to_json()
        if b.bits_per_second is not None and ref_wire:
            row["factor_vs_text_wire"] = round(b.bits_per_second / ref_wire, 1)
            row["factor_vs_text_payload"] = round(b.bits_per_second / ref_payload, 1) if ref_payload else None
            if b.udp_bits_per_second is not None:
                row["factor_udp_vs_text_udp"] = round(b.udp_bits_per_second / ref_wire, 1)
        rows.append(row)
    defaults = verify_defaults()
    bars = _bars(text, baselines) if any(t.key in ("conversational", "economy") for t in text) else None
    how = (
        f"The text link was spoken at {wpm:g} words per minute over loopback WebRTC (aiortc data "
        f"channel); every UDP datagram was counted, all in (DTLS records, STUN, 28 bytes of UDP/IPv4 "
        f"each), over the call's time from Hello to Bye, the setup apart; " if wpm else
        "The text link's bytes are the receiver's own counts for this session (bitrate.json: every "
        "datagram, all in, over the call's time from Hello to its end, the setup apart); "
    )
    summary = (
        f"Source: {source}. " + how
        + (f"the media baselines use the first {media_seconds:.1f} s of the same clips"
           + (f", their audio the script's lines spoken by the {audio_source} (the stub's tones are no test "
              f"for a speech codec). " if audio_source else ". ") if baselines else
           "no media baselines in this report. ")
        + (f"Reference text link: {reference.label}: {_f(ref_wire)} b/s all in sender->receiver, "
           f"{_f(ref_payload)} b/s of utterance payload.")
    )
    notes = [
        "All in: every UDP datagram of the call, DTLS records (SCTP inside) and STUN (ICE checks, RFC 7675 "
        "consent checks and their responses), each with 28 bytes of UDP/IPv4 header (IPv6: 48); rates per "
        "second of call time (Hello to Bye); media seconds are their own column. Each DTLS datagram is "
        "classified by the SCTP chunk it carried (aiortc sends one chunk per packet, no bundling) and the "
        "protobuf message inside.",
        "The setup before Hello (ICE checks, DTLS handshake, SCTP association, data channel open) is a "
        "one-off cost of about 2.5 KB plus its headers per connection, shown apart.",
        "Every SCTP DATA chunk costs 57-65 bytes of framing (12 SCTP common header + 16 DATA chunk "
        "header + 29 DTLS record header and ChaCha20-Poly1305 tag between two textcall peers, 37 with "
        "AES-GCM's explicit nonce otherwise) + 28 of UDP/IPv4, and is answered by a "
        "SACK of as much (RFC 4960 section 6.2; aiortc sends it at once): the sender pays a SACK for every "
        "message the receiver sends. Conversational and economy hold RENDERED acks up to 30 s and send one "
        "for the run (Ack.first_seq).",
        f"Consent checks (RFC 7675): consent expires 30 s after the last answered check; checks go at a "
        f"randomised interval. Between two textcall peers both ends check every ~{SPARSE_CONSENT_INTERVAL:g} s "
        f"(protocol.rtc.sparse_consent; an unanswered check is followed by a fresh one every second until "
        f"the lifetime ends); a browser or other WebRTC peer keeps "
        f"its own ~5 s checks and the receiver answers each (counted the same way).",
        "Added latency: how long a line waited in `textcall send` before it went out (batching), as the "
        "sender measured it; one message per line adds none.",
        f"aiortc defaults verified in the installed source (aiortc/codecs): VP8 start "
        f"{defaults['vp8_default'] / 1000:g} kb/s (REMB clamps {defaults['vp8_min'] / 1000:g}-"
        f"{defaults['vp8_max'] / 1000:g} kb/s), H.264 start {defaults['h264_default'] / 1000:g} kb/s "
        f"({defaults['h264_min'] / 1000:g}-{defaults['h264_max'] / 1000:g} kb/s), Opus "
        f"{defaults['opus'] / 1000:g} kb/s. At 64x64 the encoders do not reach those targets; the "
        f"table shows what they actually sent.",
        f"'Acceptable' means PSNR >= {ACCEPTABLE_PSNR_DB:g} dB and SSIM >= {ACCEPTABLE_SSIM:g} on luma "
        f"for video, log-spectral distance <= {ACCEPTABLE_LSD_DB:g} dB for audio; Codec2, a vocoder that "
        f"no spectral distance can judge, by intelligibility where an offline ASR is installed (Whisper "
        f"tiny.en word error rate <= 10 % on the spoken lines, receiver/report/asr.py). These are rules of "
        f"thumb; the stub generator's drawn faces (and tones, where no voice spoke the script) are far "
        f"easier to code than real faces and speech, so the video baselines here are lower bounds of "
        f"what a real call costs.",
        "Offline rates count the codec bitstream only (no container, no packets). WebRTC 'b/s' counts RTP "
        "payload bytes (getStats() outbound-rtp); its 'all-in UDP' every datagram the sending peer put on "
        "the network (SRTP, RTCP, DTLS, STUN, UDP/IPv4 headers), over the clip's length. Codec2 runs at "
        "its true rates (bits per frame / frame length) and is judged narrow-band (8 kHz); its all-in rate "
        "is computed for one frame per RTP packet (12 RTP + 10 SRTP tag + 28 UDP/IPv4 bytes), as aiortc "
        "has no Codec2 payload format; pycodec2's libcodec2 lacks the 450 mode, so Codec2 450 shows its "
        "nominal rate only.",
        *ANCHORS,
    ]
    if quick:
        notes.insert(0, "Quick run (--quick): a reduced option set and codec sweep.")
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "source": source,
        "wpm": wpm,
        "media_seconds": round(media_seconds, 3),
        "summary": summary,
        "text_link_intro": (
            "Bits per second of speech ('up' = sender->receiver). Each option is a real `textcall "
            "send` process speaking the same script to this report's receiver at the same time."
            if any(t.source == "loopback" for t in text) else
            "Bits per second of call ('up' = sender->receiver), as the receiver counted them live."
        ),
        "baseline_intro": (
            "The same clips as WebRTC media tracks on aiortc (loopback, real time) and as offline "
            "PyAV/Codec2 encodes; 'x text (all in)' = the baseline's all-in b/s / the reference text "
            "link's all-in b/s up."
        ),
        "text_link": [t.to_json() for t in text],
        "reference_text_link": reference.key,
        "baselines": rows,
        "aiortc_defaults": defaults,
        "bars": bars,
        "notes": notes,
    }


def _f(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _bars(text: list[TextLinkResult], baselines: list[Baseline]) -> dict:
    """Issue 27's bars, from this run's own counts: all-in UDP each way over the call, setup apart."""
    lines, met = [], []
    by_key = {t.key: t for t in text}
    conv, econ = by_key.get("conversational"), by_key.get("economy")
    if conv is not None:
        r = conv.rates()
        ok = (conv.added_latency_mean_s <= textlink.CONVERSATIONAL_LATENCY_S
              and max(r["udp_up"] or 0, r["udp_down"] or 0) <= textlink.CONVERSATIONAL_BAR_BPS)
        lines.append(
            f"Conversational (mean added latency <= {textlink.CONVERSATIONAL_LATENCY_S:g} s): "
            f"{conv.added_latency_mean_s:.2f} s; all-in UDP {_f(r['udp_up'])} b/s up, {_f(r['udp_down'])} b/s down "
            f"(<= {textlink.CONVERSATIONAL_BAR_BPS:g} each) -> {'met' if ok else 'NOT met'}.")
        met.append(ok)
    if econ is not None:
        r = econ.rates()
        ok = (econ.added_latency_max_s <= textlink.ECONOMY_WAIT_S + 0.5
              and max(r["udp_up"] or 0, r["udp_down"] or 0) <= textlink.ECONOMY_BAR_BPS
              and (r["udp_payload_up"] or 0) <= textlink.ECONOMY_PAYLOAD_BPS)
        lines.append(
            f"Economy (no line waits over {textlink.ECONOMY_WAIT_S:g} s): longest wait {econ.added_latency_max_s:.2f} s; "
            f"all-in UDP {_f(r['udp_up'])} b/s up, {_f(r['udp_down'])} b/s down (<= {textlink.ECONOMY_BAR_BPS:g} each), "
            f"utterance payload {_f(r['udp_payload_up'])} b/s (<= {textlink.ECONOMY_PAYLOAD_BPS:g}) -> {'met' if ok else 'NOT met'}.")
        met.append(ok)
    factors: dict[str, float] = {}
    vp8 = next((b for b in baselines if b.family == "webrtc" and b.name.startswith("VP8")
                and b.setting == "aiortc defaults"), None)
    codec2 = {b.setting: b for b in baselines if b.name.startswith("Codec2")}
    for t in (conv, econ):
        up = t.rates()["udp_up"] if t is not None else None
        if not up:
            continue
        parts = []
        if vp8 is not None and vp8.udp_bits_per_second:
            factors[f"vp8_defaults_vs_{t.key}"] = round(vp8.udp_bits_per_second / up, 1)
            parts.append(f"WebRTC VP8 + Opus at aiortc's defaults {_f(vp8.udp_bits_per_second)} b/s "
                         f"({vp8.udp_bits_per_second / up:,.0f}x)")
        for mode in ("450", "700C"):
            c2 = codec2.get(mode)
            if c2 is not None and c2.udp_bits_per_second:
                factors[f"codec2_{mode}_vs_{t.key}"] = round(c2.udp_bits_per_second / up, 2)
                parts.append(f"Codec2 {mode} {_f(c2.udp_bits_per_second)} b/s over RTP ({c2.udp_bits_per_second / up:,.1f}x; "
                             f"its bitstream alone {_f(c2.bits_per_second)} b/s, {c2.bits_per_second / up:,.2f}x)")
        if parts:
            lines.append(f"All in against all in, {t.key} ({_f(up)} b/s up): " + "; ".join(parts) + ".")
            met.append(None)
    for t in (conv, econ):
        if t is None or not t.call_seconds:
            continue
        stun = 8 * t.stun_udp_up_bytes / t.call_seconds
        sack = t.breakdown_up.get("sack", {})
        lines.append(
            f"Floors in {t.key}: RFC 7675 consent checks (and their responses) {_f(stun)} b/s up of the "
            f"{_f(t.rates()['udp_up'])} (every ~{SPARSE_CONSENT_INTERVAL:g} s between two textcall peers; a browser "
            f"checks every ~5 s); RFC 4960 SCTP SACKs {sack.get('count', 0)} datagrams, "
            f"{_f(8 * (sack.get('bytes', 0) + UDP_IPV4_HEADER * sack.get('count', 0)) / t.call_seconds)} b/s up "
            f"(one per message the receiver sends; aiortc does not delay or bundle them).")
        met.append(None)
    return {"lines": lines, "met": met, "factors": factors,
            "conversational_bar_bps": textlink.CONVERSATIONAL_BAR_BPS, "economy_bar_bps": textlink.ECONOMY_BAR_BPS}


def text_only(result: TextLinkResult, source: str) -> dict:
    """The light, per-session report: the text link alone."""
    return compose([result], [], source=source, media_seconds=0.0, quick=False, wpm=result.wpm)


