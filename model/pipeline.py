"""The facade through which the receiver gets a generator: ``load_generator(name)``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from model.clip import Generator
from model.defaults import GeneratorSettings

GENERATORS = ("default", "stub", "<folder>")


def load_generator(name: str = "default", device: str = "cpu", settings: GeneratorSettings | None = None, *,
                   pace: float | None = None, **fields) -> Generator:
    """Return the named generator, ready to ``generate()``.

    - ``default``: the talking-head generator on the weights shipped in ``model/weights``;
    - a folder path: the same generator on other weights (``diffusion/`` and optionally
      ``classifier/`` and ``lipsync/`` inside it);
    - ``stub``: the instant numpy generator for tests and dry runs (``pace``: seconds of wall time per
      second of media, to act like a slow model; it takes no settings).

    ``settings`` (validated when made) are how the talking head samples; ``fields`` replace some of
    them (``load_generator("default", steps=2)``).
    """
    if name == "stub":
        from model.stub import StubGenerator

        if settings is not None or fields:
            raise ValueError("the stub generator takes no generator settings (only pace)")
        return StubGenerator() if pace is None else StubGenerator(pace=pace)
    if pace is not None:
        raise ValueError("pace is the stub generator's only setting")
    from model.talking_head import WEIGHTS_DIR, TalkingHead

    settings = replace(settings or GeneratorSettings(), **fields)
    folder = WEIGHTS_DIR if name == "default" else Path(name).expanduser()
    if name != "default" and not folder.is_dir():
        raise ValueError(f"unknown model {name!r}: not 'default', 'stub' or a weights folder")
    return TalkingHead.from_weights(folder, device=device, settings=settings)


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
