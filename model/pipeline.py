"""The facade through which the receiver gets a generator: ``load_generator(name)``."""

from __future__ import annotations

from pathlib import Path

from model.clip import Generator

GENERATORS = ("default", "stub", "<folder>")


def load_generator(name: str = "default", device: str = "cpu", **settings) -> Generator:
    """Return the named generator, ready to ``generate()``.

    - ``default``: the talking-head generator on the weights shipped in ``model/weights``;
    - a folder path: the same generator on other weights (``diffusion/`` and optionally
      ``classifier/`` and ``lipsync/`` inside it);
    - ``stub``: the instant numpy generator for tests and dry runs.

    ``settings`` are ``TalkingHeadSettings`` fields (sampler, steps, voice, ...).
    """
    if name == "stub":
        from model.stub import StubGenerator

        extra = set(settings) - {"pace"}
        if extra:
            raise ValueError(f"the stub generator takes only pace (got {', '.join(sorted(extra))})")
        return StubGenerator(**settings)
    from model.talking_head import WEIGHTS_DIR, TalkingHead, TalkingHeadSettings

    folder = WEIGHTS_DIR if name == "default" else Path(name).expanduser()
    if name != "default" and not folder.is_dir():
        raise ValueError(f"unknown model {name!r}: not 'default', 'stub' or a weights folder")
    return TalkingHead.from_weights(folder, device=device, settings=TalkingHeadSettings(**settings))


def draw_portrait(path: str | Path, *, gender: str = "female", seed: int = 0) -> Path:
    """Write a PNG portrait in the style of the corpus's people (a face the lip-sync network and the
    face detector know), e.g. for a demo gallery; no image files ship with textcall."""
    import cv2

    from model.corpus.face import FaceRenderer, FaceState
    from model.corpus.speakers import make_speaker

    speaker = make_speaker(f"s{40 + seed}", gender, seed, seed)
    image = FaceRenderer(speaker.look).render(FaceState())  # BGR [288, 360, 3]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
    return path
