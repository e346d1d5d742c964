"""What ``textcall report`` reads: a script of lines, or a recorded session (its lines, its meter,
its media)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from receiver.report.model import TextLinkResult

logger = logging.getLogger("receiver.report.run")



def parse_script(path: Path) -> list[tuple[str, str, str]]:
    """``speech text`` or ``caption | speech text | style id`` per line, '#' comments (the
    format of ``textcall send --script``)."""
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [p.strip() for p in stripped.split("|")]
        if len(parts) > 3:
            raise ValueError(f"{path}:{number}: use at most two '|': caption | speech text | style id")
        if len(parts) == 1:
            parts = ["", parts[0], ""]
        parts += [""] * (3 - len(parts))
        lines.append((parts[0], parts[1], parts[2]))
    if not lines:
        raise ValueError(f"{path}: no utterances")
    return lines


def find_session(folder: Path) -> Path:
    """The session folder inside ``folder`` (itself, a demo's out dir, or a receiver's out dir)."""
    if (folder / "session.jsonl").exists():
        return folder
    candidates = sorted(p.parent for p in folder.glob("**/session.jsonl"))
    if not candidates:
        raise ValueError(f"no session.jsonl under {folder}: not a textcall recording")
    if len(candidates) > 1:
        logger.warning("%d sessions under %s; using the last, %s", len(candidates), folder, candidates[-1])
    return candidates[-1]


def recorded_lines(session: Path) -> list[tuple[str, str, str]]:
    lines = []
    for raw in (session / "session.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == "utterance":
            # style ids name images of that receiver's gallery: replay without them
            lines.append((event.get("caption", ""), event.get("text", ""), ""))
    if not lines:
        raise ValueError(f"{session}/session.jsonl records no utterances")
    return lines


def recorded_result(session: Path) -> TextLinkResult | None:
    path = session / "bitrate.json"
    if not path.exists():
        return None
    return result_from_meter(json.loads(path.read_text(encoding="utf-8")))


def result_from_meter(meter: dict) -> TextLinkResult:
    """The receiver's bitrate meter of a live session (bitrate.json) as a text-link result: that
    session's own counts, all in (receiver/bitrate.py), the setup before Hello apart."""
    received, sent = meter.get("received") or {}, meter.get("sent") or {}
    setup_in = (meter.get("setup_received") or {}).get("dtls_bytes", 0)
    setup_out = (meter.get("setup_sent") or {}).get("dtls_bytes", 0)

    return TextLinkResult(
        key="recorded",
        label=f"as recorded (session {meter.get('session_id', '?')})",
        speaking_seconds=0.0,
        media_seconds=float(meter.get("media_seconds") or 0.0),
        messages_up=int(meter.get("messages_received", 0)),
        payload_up_bytes=int(meter.get("payload_bytes_received", 0)),
        payload_down_bytes=int(meter.get("payload_bytes_sent", 0)),
        wire_up_bytes=int(received.get("dtls_bytes", 0)) - setup_in,
        wire_down_bytes=int(sent.get("dtls_bytes", 0)) - setup_out,
        setup_up_bytes=setup_in,
        setup_down_bytes=setup_out,
        utterance_payload_bytes=int(meter.get("utterance_payload_bytes", 0)),
        clips=int(meter.get("clips", 0)),
        source="recorded session",
        call_seconds=float(meter.get("call_seconds") or 0.0),
        udp_up_bytes=int(meter.get("udp_bytes_in", 0)),
        udp_down_bytes=int(meter.get("udp_bytes_out", 0)),
        udp_setup_up_bytes=int(meter.get("setup_udp_bytes_in", 0)),
        udp_setup_down_bytes=int(meter.get("setup_udp_bytes_out", 0)),
        stun_udp_up_bytes=int(meter.get("stun_udp_bytes_in", 0)),
        stun_udp_down_bytes=int(meter.get("stun_udp_bytes_out", 0)),
    )


def load_recorded_media(session: Path, max_seconds: float):
    """Video ``[F, 64, 64, 3]``, audio ``[S]`` of the recorded NNNN.mp4 clips, one after the other."""
    from receiver.recorder import read_mp4

    paths = sorted(p for p in session.glob("[0-9][0-9][0-9][0-9].mp4"))
    if not paths:
        raise ValueError(f"no NNNN.mp4 clips in {session}")
    clips = []
    for path in paths:
        video, audio, fps, rate = read_mp4(path)
        clips.append((video, audio, int(round(fps)), rate))
    return _join(clips, max_seconds)


def spoken_script(lines: list[tuple[str, str, str]], samples: int, rate: int, voice_spec: str = "mixed",
                  whole_seconds: float = 60.0) -> tuple[np.ndarray, str, list[tuple[str, np.ndarray]]]:
    """The script's speech texts spoken by ``voice_spec`` (one speaker per caption gender, as a
    call has), one after the other, resampled to ``rate`` and cut or padded to ``samples``: what a
    user would otherwise send as audio. A speech codec judged on the stub's tones says nothing
    about speech. Returns the audio, who spoke it, and the lines spoken whole within the first
    ``whole_seconds`` (at least the audio's length): (text, audio at ``rate``), for an intelligibility
    test that wants more words than the media baselines' seconds hold."""
    from model import choose_speaker, gender_of_caption, load_voice, resample

    voice = load_voice(voice_spec)
    rng = np.random.default_rng(0)
    speakers: dict[str | None, str] = {}
    pieces, whole, total = [], [], 0
    enough = max(samples, int(whole_seconds * rate))
    for caption, text, _ in lines:
        if not text:
            continue
        gender = gender_of_caption(caption)
        if gender not in speakers:
            speakers[gender] = choose_speaker(voice, gender, rng)
        speech = voice.synthesize(text, speaker=speakers[gender])
        audio = resample(speech.audio, speech.sample_rate, rate) if speech.sample_rate != rate else speech.audio
        pieces.append(audio.astype(np.float32))
        total += audio.size
        if total <= enough:
            whole.append((text, pieces[-1]))
        if total >= enough:
            break
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    audio = np.pad(audio[:samples], (0, max(0, samples - audio.size))).astype(np.float32)
    return audio, f"{voice_spec} voice ({', '.join(sorted(speakers.values()))})", whole


def _join(clips, max_seconds: float):
    fps, rate = clips[0][2], clips[0][3]
    videos, audios = [], []
    for video, audio, clip_fps, clip_rate in clips:
        if (clip_fps, clip_rate) != (fps, rate):
            raise ValueError("clips differ in frame or sample rate")
        want = video.shape[0] * rate // fps
        videos.append(video)
        audios.append(np.pad(audio[:want], (0, max(0, want - audio.size))).astype(np.float32))
    video, audio = np.concatenate(videos), np.concatenate(audios)
    frames = min(video.shape[0], int(max_seconds * fps))
    frames -= frames % 2 if frames > 2 else 0
    return video[:frames], audio[: frames * rate // fps], fps, rate


