"""The GRID loader: any GRID-layout corpus (real or synthetic) -> one-second training segments.

What it does per clip, as the paper (section V-D) describes the data:

1. finds the clip's word alignment (``alignments/sN/ID.align`` and the other places GRID's
   releases put it) and, if asked or present, its separate wav (``audio_25k/sN/ID.wav``);
2. decodes the video with PyAV (``.mpg``, ``.mp4``, ...) and the audio from the wav or the video's
   own track, on one clock;
3. cuts one second around the letter (GRID's keyword slot) and the digit that follows it;
4. finds the face with OpenCV's shipped Haar cascade on every few frames, fills and smooths the box
   over time, crops a square around it and resizes to ``size`` (64);
5. resamples to 16 fps (nearest frame at each output frame's centre) and 16 kHz;
6. captions the segment from the speaker -> gender table and assigns a split.

Bad input never stops a run: every clip that cannot be used is skipped with a warning naming the
reason, and the reasons are counted in the summary (and in the cache's index).

Splits: ``test_speakers`` go wholly to test; every other clip goes to train/val/test by a stable
hash of its sentence id, so a test sentence is never heard in training from any speaker.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.audio import resample
from model.corpus import align as align_io
from model.corpus.grammar import DIGITS, LETTERS
from model.corpus.speakers import CAPTIONS, GRID_GENDERS

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mpg", ".mpeg", ".mp4", ".avi", ".mov", ".mkv")
_SPEAKER_DIR = re.compile(r"^s\d+$")
_NOT_VIDEO_DIRS = {"alignments", "align", "audio_25k", "audio_50k", "audio"}


@dataclass(frozen=True)
class PrepareConfig:
    root: Path
    out: Path
    size: int = 64
    fps: int = 16
    sample_rate: int = 16_000
    seconds: float = 1.0
    genders: dict[str, str] = field(default_factory=lambda: dict(GRID_GENDERS))
    speakers: tuple[str, ...] = ()  # empty: all
    per_speaker: int = 0  # 0: all clips
    test_speakers: tuple[str, ...] = ()
    test_fraction: float = 0.1
    val_fraction: float = 0.05
    audio: str = "auto"  # auto: the wav beside it if any, else the video's track | wav | video
    face_fallback: str = "skip"  # skip the clip when no face is found | centre: crop the middle
    detect_every: int = 3
    workers: int = 2

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError("size must be >= 8")
        if self.fps < 1 or self.sample_rate < 1000 or self.seconds <= 0:
            raise ValueError("fps, sample_rate and seconds must be positive")
        if not 0 <= self.test_fraction + self.val_fraction < 1:
            raise ValueError("test + val fractions must be in [0, 1)")
        if self.audio not in ("auto", "wav", "video"):
            raise ValueError("audio must be auto, wav or video")
        if self.face_fallback not in ("skip", "centre"):
            raise ValueError("face_fallback must be skip or centre")

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))

    @property
    def samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))


@dataclass(frozen=True)
class ClipSource:
    speaker: str
    sentence: str
    video: Path
    align: Path | None
    wav: Path | None


class SkipClip(Exception):
    """A clip that cannot be used; ``reason`` is a short key counted in the summary."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ----------------------------------------------------------------------------------- discovery
def _speaker_of(video: Path, root: Path) -> str | None:
    for part in reversed(video.relative_to(root).parts[:-1]):
        if _SPEAKER_DIR.match(part):
            return part
    return None


def _first(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def discover(root: str | Path) -> tuple[list[ClipSource], Counter]:
    """Every video under ``root`` in a speaker folder (``sN``), with its alignment and wav if found."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} does not exist")
    problems: Counter = Counter()
    sources = []
    for video in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()):
        rel = video.relative_to(root).parts
        if any(part in _NOT_VIDEO_DIRS for part in rel[:-1]) or video.name.endswith(".part.mpg"):
            continue
        speaker = _speaker_of(video, root)
        if speaker is None:
            if len(rel) > 1:  # a stray file at the top (e.g. preview.mp4) is not a clip
                logger.warning("skipping %s: not inside a speaker folder (sN)", video)
                problems["no_speaker_folder"] += 1
            continue
        sid = video.stem
        align = _first([
            root / "alignments" / speaker / f"{sid}.align", root / "align" / speaker / f"{sid}.align",
            root / speaker / "align" / f"{sid}.align", video.parent / "align" / f"{sid}.align",
            video.with_suffix(".align"), root / "alignments" / f"{sid}.align",
        ])
        wav = _first([
            root / "audio_25k" / speaker / f"{sid}.wav", root / "audio" / speaker / f"{sid}.wav",
            root / "audio_50k" / speaker / f"{sid}.wav", video.with_suffix(".wav"),
        ])
        sources.append(ClipSource(speaker, sid, video, align, wav))
    return sources, problems


def assign_split(speaker: str, sentence: str, config: PrepareConfig) -> str:
    if speaker in config.test_speakers:
        return "test"
    u = (zlib.crc32(sentence.encode()) & 0xFFFFFFFF) / 2**32
    if u < config.test_fraction:
        return "test"
    if u < config.test_fraction + config.val_fraction:
        return "val"
    return "train"


# ------------------------------------------------------------------------------------ segments
def segment_window(words: list[align_io.Word], duration: float, seconds: float = 1.0) -> tuple[float, list[str]]:
    """Start of the ``seconds`` window around GRID's letter (keyword) and the digit after it."""
    spoken = align_io.spoken(words)
    digit_at = next((i for i, w in enumerate(spoken) if w.word in DIGITS), None)
    if digit_at is None:
        raise SkipClip("no_digit", "the alignment has no digit word")
    digit = spoken[digit_at]
    keyword = spoken[digit_at - 1] if digit_at > 0 else None
    if keyword is not None and (keyword.word in LETTERS or len(keyword.word) == 1) and digit.end - keyword.start <= seconds:
        centre = (keyword.start + digit.end) / 2
    else:
        centre = (digit.start + digit.end) / 2
    if duration < seconds:
        raise SkipClip("too_short", f"{duration:.2f} s")
    start = min(max(centre - seconds / 2, 0.0), duration - seconds)
    inside = [w.word for w in spoken if w.end > start and w.start < start + seconds]
    return start, inside


_cascade = None


def _get_cascade():
    global _cascade
    if _cascade is None:
        import cv2  # noqa: PLC0415

        _cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if _cascade.empty():
            raise RuntimeError("OpenCV's haarcascade_frontalface_default.xml did not load (opencv-python < 5 ships it)")
    return _cascade


def detect_face(frame_rgb: np.ndarray, full_size: bool = False) -> tuple[float, float, float] | None:
    """Centre x, centre y and side of the largest frontal face, on a half-size grey image (or the
    full-size one: slower, finds a few more)."""
    import cv2  # noqa: PLC0415

    h, w = frame_rgb.shape[:2]
    scale = 0.5 if min(h, w) >= 200 and not full_size else 1.0
    grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    min_side = max(20, int(min(grey.shape) * 0.2))
    cascade = _get_cascade()
    faces = cascade.detectMultiScale(grey, scaleFactor=1.08, minNeighbors=3, minSize=(min_side, min_side))
    if len(faces) == 0:
        faces = cascade.detectMultiScale(cv2.equalizeHist(grey), scaleFactor=1.08, minNeighbors=3, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, fw, fh = max(faces, key=lambda f: f[2] * f[3])
    return ((x + fw / 2) / scale, (y + fh / 2) / scale, max(fw, fh) / scale)


def face_track(frames: np.ndarray, indices: np.ndarray, every: int) -> tuple[np.ndarray, float]:
    """Smoothed square box ``[len(indices), 3]`` (cx, cy, side) for the given frames, and the share
    of probed frames where a face was found (0: none).

    Frames around ``indices`` are probed first; when none shows a face, the whole clip is probed,
    then again at full size: the head moves little within a clip, so boxes from elsewhere in it
    still place the crop."""
    lo, hi = int(indices.min()), int(indices.max())
    probe = np.unique(np.concatenate([np.arange(lo, hi + 1, max(every, 1)), [hi]]))
    found = [(i, detect_face(frames[i])) for i in probe]
    hits = [(i, box) for i, box in found if box is not None]
    for full_size in (False, True):
        if hits:
            break
        found = [(i, detect_face(frames[i], full_size)) for i in range(0, len(frames), 2)]
        hits = [(i, box) for i, box in found if box is not None]
    if not hits:
        return np.zeros((indices.size, 3)), 0.0
    at = np.array([i for i, _ in hits], np.float64)
    boxes = np.array([box for _, box in hits], np.float64)
    lo, hi = min(lo, int(at.min())), max(hi, int(at.max()))
    span = np.arange(lo, hi + 1)
    cx = np.interp(span, at, boxes[:, 0])
    cy = np.interp(span, at, boxes[:, 1])
    side = np.full(span.size, np.median(boxes[:, 2]))  # one size per clip: no zoom pumping
    k = min(7, span.size) | 1
    kernel = np.ones(k) / k
    pad = k // 2
    cx = np.convolve(np.pad(cx, pad, mode="edge"), kernel, mode="valid")
    cy = np.convolve(np.pad(cy, pad, mode="edge"), kernel, mode="valid")
    track = np.stack([cx, cy, side], axis=1)
    return track[indices - lo], len(hits) / len(found)


def crop_square(frame: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """A square of ``side`` pixels centred at (cx, cy) resized to ``size``; edges replicated outside."""
    import cv2  # noqa: PLC0415

    h, w = frame.shape[:2]
    half = side / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def face_crop(frame: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """The cache's crop of a face the cascade boxed at (cx, cy, side): the box runs from the brows to
    the upper lip, so it is widened and lowered to take the chin (every clip, still and reference
    the networks and judges read is cropped so)."""
    return crop_square(frame, cx, cy + 0.1 * side, side * 1.25, size)


def process_clip(src: ClipSource, config: PrepareConfig) -> dict:
    """One clip -> ``{"video": uint8 [F,3,S,S], "audio": float32 [N], "meta": {...}}`` or SkipClip."""
    from model.corpus.media import MediaError, read_clip  # noqa: PLC0415

    gender = config.genders.get(src.speaker)
    if gender not in CAPTIONS:
        raise SkipClip("no_gender", f"speaker {src.speaker} is not in the gender table")
    if src.align is None:
        raise SkipClip("missing_alignment", f"no .align for {src.video.name}")
    try:
        words = align_io.read_align(src.align)
    except (align_io.AlignError, OSError) as exc:
        raise SkipClip("bad_alignment", str(exc)) from exc
    wav = src.wav if config.audio in ("auto", "wav") else None
    if config.audio == "wav" and wav is None:
        raise SkipClip("missing_audio", f"no wav for {src.video.name}")
    try:
        clip = read_clip(src.video, wav)
    except (MediaError, OSError, ValueError) as exc:
        raise SkipClip("unreadable_video", str(exc)) from exc
    if clip.audio is None or clip.audio.size == 0:
        raise SkipClip("missing_audio", f"{src.video.name} has no audio track and no wav beside it")
    n = clip.frames.shape[0]
    duration = n / clip.fps
    align_end = words[-1].end
    if abs(align_end - duration) > 3.5 / clip.fps:
        raise SkipClip("alignment_mismatch", f"alignment ends at {align_end:.2f} s, video lasts {duration:.2f} s")
    start, inside = segment_window(words, duration, config.seconds)

    times = start + (np.arange(config.frames) + 0.5) / config.fps
    indices = np.minimum((times * clip.fps).astype(np.int64), n - 1)
    track, found = face_track(clip.frames, indices, config.detect_every)
    if found == 0.0:
        if config.face_fallback == "skip":
            raise SkipClip("no_face", f"no face found in {src.video.name}")
        h, w = clip.frames.shape[1:3]
        track = np.tile([w / 2, h / 2, min(h, w) * 0.8], (indices.size, 1))
    video = np.empty((config.frames, 3, config.size, config.size), np.uint8)
    for k, (i, (cx, cy, side)) in enumerate(zip(indices, track)):
        video[k] = face_crop(clip.frames[i], cx, cy, side, config.size).transpose(2, 0, 1)
    audio = resample(clip.audio, clip.sample_rate, config.sample_rate)
    a0 = int(round(start * config.sample_rate))
    seg = audio[a0 : a0 + config.samples]
    seg = np.pad(seg, (0, config.samples - seg.size)).clip(-1.0, 1.0).astype(np.float32)
    meta = {
        "speaker": src.speaker, "sentence": src.sentence, "caption": CAPTIONS[gender], "gender": gender,
        "start": round(float(start), 4), "words": inside, "face_found": round(found, 3),
        "source": str(src.video),
    }
    return {"video": video, "audio": seg, "meta": meta, "fallback_face": found == 0.0}


def _work(args: tuple[ClipSource, PrepareConfig]) -> tuple[ClipSource, dict | None, str | None, str]:
    src, config = args
    try:
        return src, process_clip(src, config), None, ""
    except SkipClip as exc:
        return src, None, exc.reason, str(exc)
    except Exception as exc:  # noqa: BLE001 (anything else odd in one file must not end a long run)
        return src, None, "error", f"{type(exc).__name__}: {exc}"


@dataclass
class PrepareSummary:
    written: Counter = field(default_factory=Counter)  # per split
    skipped: Counter = field(default_factory=Counter)  # per reason
    face_fallbacks: int = 0
    sources: int = 0

    def lines(self) -> list[str]:
        out = [f"clips found: {self.sources}", "segments written: " + ", ".join(f"{k} {v}" for k, v in sorted(self.written.items()))]
        if self.skipped:
            out.append("skipped: " + ", ".join(f"{k} {v}" for k, v in self.skipped.most_common()))
        if self.face_fallbacks:
            out.append(f"face not found, centre crop used: {self.face_fallbacks}")
        return out


def _free_caption(labels: dict, speaker: str, sentence: str) -> dict:
    """``description`` (every attribute of the speaker), ``free_caption`` (one wording of some of them,
    seeded by the clip) and ``free_caption_says`` (what that wording states), for a segment's meta."""
    import zlib  # noqa: PLC0415

    from model.describe.attributes import said  # noqa: PLC0415
    from model.describe.wording import caption_for  # noqa: PLC0415

    text, states = caption_for(labels, np.random.default_rng(zlib.crc32(f"{speaker}/{sentence}".encode())))
    return {"description": dict(labels), "free_caption": text, "free_caption_says": said(states)}


def prepare(config: PrepareConfig, progress: bool = True) -> PrepareSummary:
    """Read the corpus under ``config.root`` and write the segment cache to ``config.out``."""
    import multiprocessing as mp  # noqa: PLC0415

    from tqdm import tqdm  # noqa: PLC0415

    from model.corpus import POOL_START  # noqa: PLC0415
    from model.corpus.cache import CacheWriter  # noqa: PLC0415
    from model.describe.attributes import corpus_people  # noqa: PLC0415

    sources, problems = discover(config.root)
    summary = PrepareSummary(skipped=Counter(problems))
    if config.speakers:
        sources = [s for s in sources if s.speaker in config.speakers]
    if config.per_speaker:
        kept: Counter = Counter()
        chosen = []
        for s in sources:
            if kept[s.speaker] < config.per_speaker:
                kept[s.speaker] += 1
                chosen.append(s)
        sources = chosen
    summary.sources = len(sources)
    if not sources:
        logger.warning("no clips found under %s", config.root)
    writer = CacheWriter(config.out, frames=config.frames, size=config.size, samples=config.samples,
                         fps=config.fps, sample_rate=config.sample_rate)
    people = corpus_people(config.root)  # {} unless the corpus is textcall's synthetic one
    jobs = [(s, config) for s in sources]
    pool = mp.get_context(POOL_START).Pool(config.workers) if config.workers > 1 and len(jobs) > 1 else None
    results = pool.imap(_work, jobs, chunksize=2) if pool else map(_work, jobs)
    try:
        for src, result, reason, detail in tqdm(results, total=len(jobs), desc="prepare", unit="clip", disable=not progress):
            if result is None:
                logger.warning("skipping %s/%s: %s", src.speaker, src.video.name, detail)
                summary.skipped[reason] += 1
                continue
            split = assign_split(src.speaker, src.sentence, config)
            if src.speaker in people:  # a synthetic speaker: its full description and a free-form caption
                result["meta"].update(_free_caption(people[src.speaker], src.speaker, src.sentence))
            writer.add(split, result["video"], result["audio"], result["meta"])
            summary.written[split] += 1
            if result["fallback_face"]:
                logger.warning("no face found in %s/%s: centre crop used", src.speaker, src.video.name)
                summary.face_fallbacks += 1
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        writer.close({
            "source": str(config.root), "skipped": dict(summary.skipped), "face_fallbacks": summary.face_fallbacks,
            "settings": {"size": config.size, "fps": config.fps, "sample_rate": config.sample_rate, "seconds": config.seconds,
                         "test_speakers": list(config.test_speakers), "test_fraction": config.test_fraction,
                         "val_fraction": config.val_fraction, "audio": config.audio, "face_fallback": config.face_fallback},
        })
    for line in summary.lines():
        logger.info("%s", line)
    return summary
