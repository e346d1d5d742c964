"""textcall's generative side: networks, diffusion, voices, lip sync, corpora, training.

``model`` itself is the facade the receiver (and any other caller) uses; nothing else in ``model`` is
imported from outside it::

    from model import GeneratorSettings, Request, load_generator
    generator = load_generator("default", settings=GeneratorSettings(steps=10))
    call = generator.open_call("alice")          # one face per call (model/call.py)
    for chunk in call.stream(Request(caption="A woman is talking", text="Hello.")):
        ...                                      # frames and speech as they are made

Its names load lazily (PEP 562): importing ``model`` loads nothing, so the ``textcall`` CLI can
register the receiver's parsers for ``--help`` without numpy or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# name -> the module that defines it
_EXPORTS = {
    # what a generator is asked for and returns (model/clip.py)
    "AUDIO_RATE": "model.clip", "VIDEO_FPS": "model.clip", "Request": "model.clip", "Clip": "model.clip",
    "Chunk": "model.clip", "Generator": "model.clip", "join_chunks": "model.clip", "split_clip": "model.clip",
    # getting a generator, and its settings (model/pipeline.py, model/defaults.py)
    "load_generator": "model.pipeline", "draw_portrait": "model.pipeline", "GENERATORS": "model.pipeline",
    "GeneratorSettings": "model.defaults", "add_generation_flags": "model.defaults",
    "generation_settings": "model.defaults", "SAMPLERS": "model.defaults", "VOICE": "model.defaults",
    # MP4s and pictures (model/media.py)
    "Mp4Writer": "model.media", "write_clip": "model.media", "read_mp4": "model.media",
    "partial_path": "model.media", "contact_sheet": "model.media",
    # audio at another sample rate (model/audio.py: the one resampler)
    "resample": "model.audio",
    # voices on their own (model/speech): `textcall report` speaks a script for its audio baselines
    "load_voice": "model.speech", "choose_speaker": "model.speech", "gender_of_caption": "model.speech",
    "normalize": "model.speech.normalize",  # (its module's name too: taken from the module itself)
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and editors; at run time the names load on first use
    from model.clip import AUDIO_RATE, VIDEO_FPS, Chunk, Clip, Generator, Request, join_chunks, split_clip
    from model.defaults import SAMPLERS, VOICE, GeneratorSettings, add_generation_flags, generation_settings
    from model.audio import resample
    from model.media import Mp4Writer, contact_sheet, partial_path, read_mp4, write_clip
    from model.pipeline import GENERATORS, draw_portrait, load_generator
    from model.speech import choose_speaker, gender_of_caption, load_voice
    from model.speech.normalize import normalize
