"""Still portraits of many synthetic people, framed exactly as the segment cache frames faces.

The joint model's corpus has a few dozen speakers, each filmed saying sentences; a model that only
has to draw one still face per call (``model/portrait``) learns from far more people than that, and
a face-identity judge (``model/evaluation/identity.py``) needs people no generator ever saw. Both
read this: ``speakers`` drawn people (``speakers.make_speaker``, the synthesizer's own looks), each in
``per_speaker`` poses and expressions sampled like the corpus's motion (head roll/yaw/nod/shift, mouth
shapes, rare blinks), face-detected and cropped with the cache's rule (``grid.detect_face`` box,
lowered by a tenth, 1.25x, square, ``size`` pixels).

Layout of ``OUT`` (never in the repository):
    stills.npz      images uint8 [N, S, S, 3] RGB, speaker int32 [N] (index into speakers.json), gender
                    uint8 [N] (0 male, 1 female)
    speakers.json   {"seed", "first_id", "speakers": [Speaker.to_json(), ...]}
    sheet.png       the first portraits, to look at
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.corpus import POOL_START
from model.corpus.speakers import FEMALE, MALE, Speaker, make_speaker

logger = logging.getLogger(__name__)

# speaker seeds that keep three populations of people apart: the video corpus (seeds 0, 1, ...),
# the portrait model's training people and the identity judge's (never seen by any generator)
PORTRAIT_SEED = 101
JUDGE_SEED = 202


@dataclass(frozen=True)
class StillsConfig:
    out: Path
    speakers: int = 4000
    per_speaker: int = 4
    size: int = 64
    seed: int = PORTRAIT_SEED
    first_id: int = 1000  # speaker ids s<first_id>.. (the video corpus uses s1..s<200)
    neutral: bool = True  # portraits: eyes open, mouth near rest (a call's reference face)
    workers: int = 2

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.per_speaker < 1 or self.size < 16 or self.workers < 1:
            raise ValueError("speakers, per_speaker and workers must be positive and size >= 16")


def stills_speakers(config: StillsConfig) -> list[Speaker]:
    """The drawn people of a stills set: genders alternate, skin tones spread by index."""
    return [make_speaker(f"s{config.first_id + i}", (FEMALE, MALE)[i % 2], i, config.seed) for i in range(config.speakers)]


def random_state(rng: np.random.Generator, neutral: bool):
    """One pose and expression, spread like the synthetic corpus's motion (``synth._motion``)."""
    from model.corpus.face import FaceState

    return FaceState(
        opening=float(rng.uniform(0.0, 0.3) if neutral else rng.beta(1.2, 2.5)),
        width=float(rng.uniform(0.35, 0.65) if neutral else rng.uniform(0.1, 0.9)),
        blink=0.0 if neutral or rng.random() > 0.08 else float(rng.uniform(0.3, 1.0)),
        roll=float(rng.normal(0, 1.2)), yaw=float(rng.normal(0, 0.17)), pitch=float(rng.normal(0, 0.15)),
        dx=float(rng.normal(0, 2.0)), dy=float(rng.normal(0, 1.2)),
    )


def render_speaker(args: tuple[Speaker, int, int, int, bool]) -> np.ndarray:
    """``per_speaker`` framed portraits of one person: uint8 ``[K, S, S, 3]`` RGB."""
    from model.corpus.face import FaceRenderer, FaceState
    from model.corpus.grid import detect_face, face_crop

    speaker, per_speaker, size, seed, neutral = args
    rng = np.random.default_rng([seed, int(speaker.id[1:]), 5])
    renderer = FaceRenderer(speaker.look)
    rest = renderer.render(FaceState())[..., ::-1]
    home = detect_face(rest) or detect_face(rest, full_size=True) or (180.0, 126.0, 150.0)
    out = np.empty((per_speaker, size, size, 3), np.uint8)
    for k in range(per_speaker):
        state = random_state(rng, neutral)
        frame = np.ascontiguousarray(renderer.render(state)[..., ::-1])  # RGB
        box = detect_face(frame)
        # one box size per person, as the cache keeps one per clip; the centre follows the head
        cx, cy = (box[0], box[1]) if box is not None else (home[0] + state.dx, home[1] + state.dy)
        side = home[2]
        out[k] = face_crop(frame, cx, cy, side, size)
    return out


def make_stills(config: StillsConfig, progress: bool = True) -> Path:
    """Render the set into ``config.out``; returns the ``stills.npz`` path."""
    from tqdm.auto import tqdm

    from model.media import image_grid

    speakers = stills_speakers(config)
    jobs = [(s, config.per_speaker, config.size, config.seed, config.neutral) for s in speakers]
    images = np.empty((len(speakers), config.per_speaker, config.size, config.size, 3), np.uint8)
    pool = mp.get_context(POOL_START).Pool(config.workers) if config.workers > 1 else None
    try:
        results = pool.imap(render_speaker, jobs, chunksize=8) if pool else map(render_speaker, jobs)
        for i, faces in enumerate(tqdm(results, total=len(jobs), desc="stills", unit="person", disable=not progress)):
            images[i] = faces
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(speakers) * config.per_speaker
    speaker_index = np.repeat(np.arange(len(speakers), dtype=np.int32), config.per_speaker)
    gender = np.array([s.gender == FEMALE for s in speakers], np.uint8)[speaker_index]
    path = out / "stills.npz"
    tmp = out / "stills.part.npz"
    np.savez(tmp, images=images.reshape(n, config.size, config.size, 3), speaker=speaker_index, gender=gender)
    tmp.replace(path)
    (out / "speakers.json").write_text(json.dumps({
        "seed": config.seed, "first_id": config.first_id, "per_speaker": config.per_speaker, "size": config.size,
        "neutral": config.neutral, "speakers": [s.to_json() for s in speakers],
    }))
    image_grid(images[:48, 0], out / "sheet.png", columns=12, scale=2)
    return path


@dataclass(frozen=True)
class Stills:
    """A loaded stills set."""

    images: np.ndarray  # uint8 [N, S, S, 3]
    speaker: np.ndarray  # int32 [N]
    gender: np.ndarray  # uint8 [N], 1 = female
    speakers: list[dict]

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def load(cls, folder: str | Path) -> Stills:
        folder = Path(folder)
        path = folder / "stills.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{folder} holds no stills.npz; make one with `textcall corpus stills --out {folder}`")
        with np.load(path) as data:
            images, speaker, gender = data["images"], data["speaker"], data["gender"]
        meta = json.loads((folder / "speakers.json").read_text())
        return cls(images, speaker, gender, meta["speakers"])
