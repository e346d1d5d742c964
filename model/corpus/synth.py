"""``textcall corpus synth``: a synthetic corpus in GRID's layout, with exact lip-sync ground truth.

Layout written under ``OUT`` (the same the loader reads for real GRID)::

    s4/bbaf2n.mpg              MPEG-1 video 360x288 at 25 fps with MP2 audio (GRID's own format)
    s4/bbaf2n.truth.npz        per-frame ground truth: mouth opening/width, viseme, blink, head pose
    alignments/s4/bbaf2n.align word alignment, GRID's units (1/1000 video frame)
    audio_25k/s4/bbaf2n.wav    the speech at 25 kHz, as GRID's audio_25k release
    speakers.json              who is who: gender, voice, looks (also the caption table)
    corpus.json                settings and timing of the run
    contact_sheet.png          one frame of every speaker
    preview.mp4                a few clips back to back (H.264 + AAC) to watch

Every clip is a pure function of ``(seed, speaker, clip index)``: the same seed gives the same
corpus, whatever the number of workers.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from model.audio import resample
from model.corpus import POOL_START
from model.corpus import align as align_io
from model.corpus.grammar import Sentence, random_sentences
from model.corpus.speakers import Speaker, make_speakers

logger = logging.getLogger(__name__)

FPS = 25
MIN_FRAMES = 75  # GRID's clips are three seconds
WAV_RATE = 25_000
MPG_AUDIO_RATE = 32_000
VOICES = ("espeak", "kokoro")  # who speaks the corpus (SynthConfig.voice)


@dataclass(frozen=True)
class SynthConfig:
    out: Path
    n_female: int = 12
    n_male: int = 12
    sentences: int = 40
    seed: int = 0
    workers: int = 2
    preview_clips: int = 8
    voice: str = "espeak"  # or "kokoro": Kokoro-82M's neural voices (women jf_*, men jm_kumo), IPA timings

    def __post_init__(self) -> None:
        if self.n_female < 0 or self.n_male < 0 or self.n_female + self.n_male == 0:
            raise ValueError("need at least one speaker")
        if not 1 <= self.sentences <= 1000:
            raise ValueError("sentences per speaker must be 1..1000")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.voice not in VOICES:
            raise ValueError(f"voice must be one of {', '.join(VOICES)}")


@dataclass(frozen=True)
class Said:
    """A sentence outside the grammar, for a clip that speaks given speech (``ClipJob.speech``)."""

    id: str
    text: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClipJob:
    speaker: Speaker
    sentence: Sentence | Said
    index: int
    seed: int
    out: Path
    voice: str = "espeak"
    # speech already said (a ``Speech`` with phoneme timings, from any voice): the clip's speaker says
    # it instead of their own voice (``textcall eval calls``'s references spoken in the calls' voices)
    speech: object | None = None


KOKORO_FEMALE = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro")
_engines: dict = {}


def _speak(job: ClipJob, rate: int):
    """The clip's speech and its phonemes as espeak-ng mnemonics ``(label, start, end)``: espeak-ng's own
    (the speaker's voice, pitch and this clip's rate), or Kokoro's (a voice per speaker: one of the four
    female ones by speaker number, jm_kumo for men; the rate as its speed) with its IPA timings mapped."""
    spk = job.speaker
    if job.speech is not None:
        from model.corpus.visemes import as_mnemonics  # noqa: PLC0415

        return job.speech, as_mnemonics(job.speech.phonemes)
    if job.voice == "espeak":
        from model.speech.libespeak import synthesize  # noqa: PLC0415

        speech = synthesize(job.sentence.text, voice=spk.voice, rate=rate, pitch=spk.pitch, pitch_range=spk.pitch_range)
        return speech, [(p.label, p.start, p.end) for p in speech.phonemes]
    from model.corpus.visemes import from_ipa  # noqa: PLC0415
    from model.speech.kokoro import KokoroVoiceEngine  # noqa: PLC0415

    engine = _engines.get("kokoro")
    if engine is None:
        engine = _engines["kokoro"] = KokoroVoiceEngine.installed()
    engine.speed = float(np.clip(rate / 170, 0.8, 1.25))
    female = spk.gender == "female"
    voice = KOKORO_FEMALE[int(spk.id[1:]) % len(KOKORO_FEMALE)] if female else "jm_kumo"
    speech = engine.synthesize(job.sentence.text, speaker=voice)
    return speech, from_ipa(speech.phonemes)


def _motion(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Small smooth head motion and blinks over ``n`` frames."""
    t = np.arange(n) / FPS

    def wobble(amplitude: float) -> np.ndarray:
        out = np.zeros(n)
        for _ in range(3):
            f, ph = rng.uniform(0.15, 1.1), rng.uniform(0, 2 * np.pi)
            out += np.sin(2 * np.pi * f * t + ph) * rng.uniform(0.3, 1.0)
        return (amplitude * out / 2.0).astype(np.float32)

    blink = np.zeros(n, np.float32)
    at = rng.uniform(0.2, 1.5)
    while at < n / FPS:
        # close in ~60 ms, open in ~140 ms
        rel = t - at
        profile = np.where(rel < 0, np.clip(1 + rel / 0.06, 0, 1), np.clip(1 - rel / 0.14, 0, 1))
        blink = np.maximum(blink, profile.astype(np.float32))
        at += rng.uniform(1.6, 4.5)
    return {
        "roll": wobble(2.5), "yaw": wobble(0.35), "pitch": wobble(0.3),
        "dx": wobble(4.0), "dy": wobble(2.5), "blink": blink,
    }


def _clip_paths(out: Path, speaker: str, sid: str) -> dict[str, Path]:
    return {
        "video": out / speaker / f"{sid}.mpg",
        "truth": out / speaker / f"{sid}.truth.npz",
        "align": out / "alignments" / speaker / f"{sid}.align",
        "wav": out / "audio_25k" / speaker / f"{sid}.wav",
    }


def _write_mpg(path: Path, frames_bgr: list[np.ndarray], audio: np.ndarray, rate: int) -> None:
    import av  # noqa: PLC0415

    tmp = path.with_suffix(".part.mpg")
    with av.open(str(tmp), "w", format="mpeg") as container:
        video = container.add_stream("mpeg1video", rate=FPS)
        video.width, video.height, video.pix_fmt = frames_bgr[0].shape[1], frames_bgr[0].shape[0], "yuv420p"
        video.bit_rate = 1_800_000
        sound = container.add_stream("mp2", rate=rate, layout="mono")
        sound.bit_rate = 64_000
        for i, img in enumerate(frames_bgr):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        step = 1152 * 4
        for start in range(0, pcm.size, step):
            chunk = pcm[start : start + step]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    tmp.replace(path)


_renderers: dict = {}


def render_clip(job: ClipJob) -> dict:
    """Speak, animate, render and write one clip; returns a small summary for the manifest."""
    import soundfile as sf  # noqa: PLC0415

    from model.corpus.face import FaceRenderer, FaceState  # noqa: PLC0415
    from model.corpus.visemes import mouth_track  # noqa: PLC0415
    spk = job.speaker
    rng = np.random.default_rng([job.seed, int(spk.id[1:]), job.index, 11])
    rate = int(np.clip(spk.rate + rng.integers(-8, 9), 120, 220))
    speech, spoken = _speak(job, rate)
    audio = speech.audio
    peak = float(np.abs(audio).max()) or 1.0
    audio = audio * (rng.uniform(0.55, 0.8) / peak)
    # drop the synthesiser's own trailing silence: the end event marks where speech stops
    lead = float(rng.uniform(0.45, 0.75))
    n_frames = max(MIN_FRAMES, int(math.ceil((lead + speech.duration + 0.25) * FPS)))
    duration = n_frames / FPS
    sr = speech.sample_rate
    track = np.zeros(int(round(duration * sr)), np.float32)
    start = int(round(lead * sr))
    track[start : start + audio.size] = audio[: track.size - start]
    track += rng.normal(0, 10 ** (-62 / 20), track.size).astype(np.float32)  # faint room noise

    phonemes = [(label, start + lead, end + lead) for label, start, end in spoken]
    mouth = mouth_track(phonemes, n_frames, FPS)
    motion = _motion(rng, n_frames)
    renderer = _renderers.get(spk.id)
    if renderer is None:
        renderer = _renderers[spk.id] = FaceRenderer(spk.look)
    frames = [
        renderer.render(FaceState(
            opening=float(mouth.opening[i]), width=float(mouth.width[i]), blink=float(motion["blink"][i]),
            roll=float(motion["roll"][i]), yaw=float(motion["yaw"][i]), pitch=float(motion["pitch"][i]),
            dx=float(motion["dx"][i]), dy=float(motion["dy"][i]),
        ))
        for i in range(n_frames)
    ]

    # word alignment: a word starts with its first phoneme; GRID pads with "sil"
    words: list[align_io.Word] = []
    phon_starts = np.array([s for _, s, _ in phonemes]) if phonemes else np.zeros(0)
    spoken_end = max((e for lbl, _, e in phonemes if not lbl.startswith("_")), default=lead)
    for i, w in enumerate(speech.words):
        t0 = w.start + lead
        later = phon_starts[phon_starts >= t0 - 1e-3]
        t0 = float(later[0]) if later.size else t0
        t1 = speech.words[i + 1].start + lead if i + 1 < len(speech.words) else spoken_end
        said = job.sentence.words
        label = said[i] if i < len(said) else w.label
        # GRID's alignments are ASCII; a voice's own word labels may be IPA (espeak-ng joins "with the")
        words.append(align_io.Word(label if label.isascii() else f"w{i}", t0, max(t1, t0 + 0.01)))
    # fix each word's end to the next word's start (after the start snapping above)
    for i in range(len(words) - 1):
        words[i] = align_io.Word(words[i].word, words[i].start, max(words[i + 1].start, words[i].start + 0.01))
    sil_end = words[0].start if words else duration
    alignment = [align_io.Word("sil", 0.0, sil_end), *words, align_io.Word("sil", words[-1].end if words else sil_end, duration)]

    paths = _clip_paths(job.out, spk.id, job.sentence.id)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(paths["wav"], resample(track, sr, WAV_RATE), WAV_RATE, subtype="PCM_16")
    align_io.write_align(paths["align"], alignment)
    _write_mpg(paths["video"], frames, resample(track, sr, MPG_AUDIO_RATE), MPG_AUDIO_RATE)
    from model.corpus.visemes import NAMES  # noqa: PLC0415

    np.savez_compressed(
        paths["truth"], fps=np.float32(FPS), opening=mouth.opening, width=mouth.width, viseme=mouth.viseme,
        viseme_names=np.array(NAMES), blink=motion["blink"], roll=motion["roll"], yaw=motion["yaw"],
        pitch=motion["pitch"], dx=motion["dx"], dy=motion["dy"], speech_start=np.float32(lead),
        phoneme=np.array([p[0] for p in phonemes]), phoneme_start=np.array([p[1] for p in phonemes], np.float32),
        phoneme_end=np.array([p[2] for p in phonemes], np.float32),
    )
    return {"speaker": spk.id, "sentence": job.sentence.id, "text": job.sentence.text, "frames": n_frames}


def plan(config: SynthConfig) -> tuple[list[Speaker], list[ClipJob]]:
    speakers = make_speakers(config.n_female, config.n_male, config.seed)
    jobs = []
    for spk in speakers:
        sentences = random_sentences(config.sentences, np.random.default_rng([config.seed, int(spk.id[1:]), 1]))
        jobs += [ClipJob(spk, s, i, config.seed, config.out, config.voice) for i, s in enumerate(sentences)]
    return speakers, jobs


def synthesize_corpus(config: SynthConfig, progress: bool = True) -> dict:
    """Generate the whole corpus; returns the manifest written to ``corpus.json``."""
    from tqdm import tqdm  # noqa: PLC0415

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    speakers, jobs = plan(config)
    (out / "speakers.json").write_text(json.dumps({"speakers": [s.to_json() for s in speakers]}, indent=1))
    began = time.perf_counter()
    clips: list[dict] = []
    failures: list[str] = []
    bar = tqdm(total=len(jobs), desc="synth clips", unit="clip", disable=not progress)
    if config.workers == 1:
        results = map(_safe_render, jobs)
        pool = None
    else:
        pool = mp.get_context(POOL_START).Pool(config.workers)
        results = pool.imap_unordered(_safe_render, jobs, chunksize=4)
    try:
        for result in results:
            if "error" in result:
                failures.append(result["error"])
                logger.warning("clip failed: %s", result["error"])
            else:
                clips.append(result)
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    elapsed = time.perf_counter() - began
    clips.sort(key=lambda c: (int(c["speaker"][1:]), c["sentence"]))
    write_contact_sheet(out, speakers)
    write_preview(out, [c for c in clips if c["sentence"] == next(d["sentence"] for d in clips if d["speaker"] == c["speaker"])][: config.preview_clips])
    manifest = {
        "generator": "textcall corpus synth",
        "seed": config.seed,
        "speakers": len(speakers),
        "sentences_per_speaker": config.sentences,
        "clips": len(clips),
        "failed": failures,
        "fps": FPS,
        "size": [360, 288],
        "seconds": round(elapsed, 1),
        "workers": config.workers,
        "voice": config.voice,
    }
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _safe_render(job: ClipJob) -> dict:
    try:
        return render_clip(job)
    except Exception as exc:  # a failing clip must not stop a long run; it is counted instead
        logger.debug("clip %s/%s failed", job.speaker.id, job.sentence.id, exc_info=True)
        return {"error": f"{job.speaker.id}/{job.sentence.id}: {exc}"}


def _middle_frame(video: Path) -> np.ndarray | None:
    from model.corpus.media import read_video  # noqa: PLC0415

    try:
        frames, _ = read_video(video)
    except Exception:  # noqa: BLE001 (a missing picture must not fail the run)
        return None
    # the frame with the widest-open mouth shows the speaker mid-word
    truth = video.with_suffix(".truth.npz")
    index = len(frames) // 2
    if truth.exists():
        with np.load(truth) as t:
            index = int(np.argmax(t["opening"][: len(frames)]))
    return frames[index]


def write_contact_sheet(out: Path, speakers: list[Speaker], columns: int = 6) -> Path | None:
    """One frame of each speaker, labelled with id and gender, as ``contact_sheet.png``."""
    import cv2  # noqa: PLC0415

    tiles = []
    for spk in speakers:
        videos = sorted((out / spk.id).glob("*.mpg"))
        frame = _middle_frame(videos[0]) if videos else None
        if frame is None:
            continue
        tile = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), (240, 192), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, f"{spk.id} {spk.gender[0].upper()}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, f"{spk.id} {spk.gender[0].upper()}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        return None
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)])
    path = out / "contact_sheet.png"
    cv2.imwrite(str(path), sheet)
    return path


def write_preview(out: Path, clips: list[dict]) -> Path | None:
    """The given clips back to back as ``preview.mp4`` (H.264 + AAC), for a person to watch."""
    from model.corpus.media import read_audio_track, read_video, write_mp4  # noqa: PLC0415

    videos, audios = [], []
    for clip in clips:
        path = out / clip["speaker"] / f"{clip['sentence']}.mpg"
        try:
            frames, fps = read_video(path)
            audio, rate = read_audio_track(path)
        except Exception:  # noqa: BLE001
            logger.warning("preview: cannot read %s", path)
            continue
        n = int(round(len(frames) / fps * rate))
        audio = np.pad(audio, (0, max(0, n - audio.size)))[:n]
        videos.append(frames)
        audios.append(audio)
    if not videos:
        return None
    path = out / "preview.mp4"
    write_mp4(path, np.concatenate(videos), np.concatenate(audios), fps=FPS, sample_rate=rate)
    return path
