"""One face per call: the per-call object the receiver says each utterance into.

A video call is one person, steady, for the whole call. ``generator.open_call(call_id, store=DIR)``
returns a ``Call`` that keeps that person's face (the *reference*) and the voice chosen for them;
``call.say(request)`` renders one utterance as that person. The face is

- the sender's style image when an utterance carries one (upload or gallery id), framed like the
  corpus; that utterance is the paper's still-image animation (IV-E), and every later one copies
  the face;
- otherwise a face drawn once, from what the first caption says (``read_caption``: with a caption
  encoder, gender, hair, skin, glasses, ... ``model/describe``; without one, its gender), by the
  portrait model (``model/portrait``; with no gender said, one drawn from the call id) and kept;
- replaced only when the sender changes it: a new style image, or a caption that says something of
  the person the face was not drawn as (another gender, other hair, glasses it was not asked for;
  what it says is added to what the face was drawn from). A style image's face changes only with
  another style image or a caption of the other gender. A style image with no face fails that
  utterance with a ``GenerationError`` and the call keeps its face. A caption never fails an
  utterance: words the reader does not know are passed over and listed in the clip's info
  (``info["caption"]``, which the receiver's render log keeps).

No-text and caption-only utterances keep the face too. With ``store`` the face is written there
(``face.png`` + ``face.json``) whenever it changes and read back by the next ``open_call`` for the
same store, so it survives a sender reconnect and a receiver restart.

This module is numpy + OpenCV only: the stub generator's calls use it too.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

import numpy as np

from model.clip import Chunk, Clip, Request, join_chunks

logger = logging.getLogger(__name__)

GENDERS = ("male", "female")
GENDER_CAPTIONS = {"male": "A man is talking", "female": "A woman is talking"}
FACE_PNG, FACE_JSON, FACE_HIRES_PNG = "face.png", "face.json", "face_hires.png"


class GenerationError(ValueError):
    """A request the generator cannot render; the message is meant for the sender."""


@dataclass(frozen=True)
class Face:
    """The person a call shows: the reference every frame copies.

    image: uint8 ``[S, S, 3]`` RGB at the generator's size. source: ``"portrait"`` (drawn by the
    portrait model), ``"joint"`` (drawn by the joint model, when no portrait model is loaded),
    ``"style"`` (the sender's style image) or ``"stub"``. gender: ``"male"``, ``"female"`` or None
    (a style image with no caption). ``number`` counts the faces of the call (1 = its first).
    ``hires``: the same face at the output size when the generator upscales (the upscaler's
    reference: the style image framed at that size, or the face upscaled once), else None.
    """

    image: np.ndarray
    source: str
    gender: str | None
    caption: str = ""
    seed: int = 0
    number: int = 1
    detail: str = ""  # e.g. the style image's file name
    description: dict = field(default_factory=dict)  # what the face was drawn as (attribute -> value)
    hires: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for img in (self.image, self.hires) if self.hires is not None else (self.image,):
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"a face is uint8 [S, S, 3], got {getattr(img, 'dtype', type(img))} {getattr(img, 'shape', '')}")
        if self.gender not in (None, *GENDERS):
            raise ValueError(f"gender must be male, female or None, got {self.gender!r}")

    def describe(self) -> dict:
        """What the render log and the sender's journal say about it (no pixels)."""
        return {k: v for k, v in asdict(self).items() if k not in ("image", "hires")}


class FaceStore:
    """``face.png`` + ``face.json`` in one folder, written atomically (a kill never leaves half a face)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def load(self) -> Face | None:
        png, meta = self.folder / FACE_PNG, self.folder / FACE_JSON
        if not png.is_file() or not meta.is_file():
            return None
        import cv2

        try:
            info = json.loads(meta.read_text())
            bgr = cv2.imread(str(png), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError("unreadable PNG")
            hires = cv2.imread(str(self.folder / FACE_HIRES_PNG), cv2.IMREAD_COLOR) if info.get("hires") else None
            return Face(image=np.ascontiguousarray(bgr[..., ::-1]),
                        hires=np.ascontiguousarray(hires[..., ::-1]) if hires is not None else None, **{k: info[k] for k in ("source", "gender", "caption", "seed", "number", "detail", "description") if k in info})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("call face in %s is unreadable (%s); the call starts a new one", self.folder, exc)
            return None

    def save(self, face: Face) -> None:
        import cv2

        self.folder.mkdir(parents=True, exist_ok=True)
        files = []
        for name, image in ((FACE_PNG, face.image), (FACE_HIRES_PNG, face.hires)):
            if image is not None:
                ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
                if not ok:
                    raise OSError("could not encode the call's face as PNG")
                files.append((name, data.tobytes()))
        meta = {**face.describe(), "hires": face.hires is not None}
        # the JSON last: it says whether the large PNG belongs to this face
        for name, payload in (*files, (FACE_JSON, (json.dumps(meta, indent=1) + "\n").encode())):
            tmp = self.folder / (name + ".part")
            tmp.write_bytes(payload)
            os.replace(tmp, self.folder / name)


@dataclass(frozen=True)
class CaptionReading:
    """What a call read in a caption: the attributes it says (``model.describe.attributes`` names; only
    those said) and the words the reader passed over."""

    text: str
    description: dict = field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    @property
    def gender(self) -> str | None:
        return self.description.get("gender")

    def info(self) -> dict:
        return {"text": self.text, "read": dict(self.description), "unknown": list(self.unknown)}


# the words the gender-only reader knows (captions like the paper's two)
_PLAIN_WORDS = frozenset("a an the is are talking speaking speaks talks person someone speaker who".split())


def read_gender(caption: str) -> CaptionReading:
    """The reader of a generator with no caption encoder: the caption's gender, every other word unknown."""
    import re

    gender = caption_gender(caption)
    words = re.findall(r"[a-z]+", caption.lower())
    unknown = tuple(dict.fromkeys(w for w in words if w not in _PLAIN_WORDS and caption_gender(w) is None))
    return CaptionReading(caption, {"gender": gender} if gender else {}, unknown)


def caption_gender(caption: str) -> str | None:
    from model.speech.voice import gender_of_caption

    return gender_of_caption(caption)


def call_seed(call_id: str, what: str, number: int = 0) -> int:
    return zlib.crc32(f"{call_id}|{what}|{number}".encode())


def default_gender(call_id: str) -> str:
    """The gender of a call whose first utterances name none: fixed by the call id."""
    return GENDERS[call_seed(call_id, "gender") % 2]


@runtime_checkable
class CallLike(Protocol):
    """What the receiver needs of a call."""

    call_id: str

    @property
    def face(self) -> Face | None: ...

    def say(self, request: Request) -> Clip: ...

    def stream(self, request: Request) -> Iterator[Chunk]: ...


class Call:
    """Base of a generator's call: the face decisions and the store; subclasses draw and render.

    Subclasses implement ``style_face(path) -> uint8 [S, S, 3]`` (raise ``GenerationError``),
    ``draw_face(description, seed, number) -> Face`` and ``render(request, face, caption) ->
    Iterator[Chunk]`` (the utterance's chunks in order, each as soon as it is final), and may override
    ``read_caption(caption) -> CaptionReading`` and ``caption_condition(reading)`` (what the generator's
    network reads of the caption: a caption index, or a description for one that reads descriptions).
    Calls of one generator share its lock: one utterance renders at a time (held from the first
    chunk of ``stream`` until its last is taken, or the iterator is closed).
    """

    def __init__(self, call_id: str, *, store: str | Path | None = None, lock: threading.Lock | None = None) -> None:
        self.call_id = call_id or "call"
        self.store = FaceStore(store) if store is not None else None
        self._lock = lock or threading.Lock()
        self._face: Face | None = None
        self._loaded = False
        self.faces_made = 0  # faces this object drew or took (not loaded from the store)

    @property
    def face(self) -> Face | None:
        if not self._loaded:
            self._loaded = True
            if self.store is not None:
                self._face = self.store.load()
        return self._face

    # -- to implement ------------------------------------------------------------------------------
    def read_caption(self, caption: str) -> CaptionReading:
        return read_gender(caption)

    def can_draw(self, attribute: str) -> bool:
        """Whether a drawn face honours this attribute (those it cannot never redraw a face)."""
        return attribute == "gender"

    def caption_condition(self, reading: CaptionReading) -> int | dict:
        return 0

    def style_face(self, path: Path) -> np.ndarray:
        raise NotImplementedError

    def draw_face(self, description: dict, seed: int, number: int) -> Face:
        raise NotImplementedError

    def face_detail(self, face: Face, style_image: Path | None) -> np.ndarray | None:
        """The face at the output size when the generator upscales (``Face.hires``), else None."""
        return None

    def render(self, request: Request, face: Face | None, caption: int | dict) -> Iterator[Chunk]:
        raise NotImplementedError

    # -- the verbs -------------------------------------------------------------------------------
    def say(self, request: Request) -> Clip:
        """Render one utterance as the call's person (choosing or changing the face first): the
        chunks of ``stream`` joined, so a streamed utterance and a said one are the same clip."""
        return join_chunks(self.stream(request))

    def stream(self, request: Request) -> Iterator[Chunk]:
        """Render one utterance chunk by chunk: each ``Chunk`` as soon as its frames are final
        (cleaned and lip-synced), the last one with the clip's ``info``. Errors (``GenerationError``
        included) are raised from the iteration, before the first chunk when the request is refused."""
        with self._lock:
            reading = self.read_caption(request.caption)
            if reading.unknown:
                logger.info("call %s: caption %r: passed over %s", self.call_id, request.caption, ", ".join(reading.unknown))
            caption = self.caption_condition(reading)
            made, t0 = self.faces_made, time.perf_counter()
            face = self._face_for(request, reading)
            face_s = time.perf_counter() - t0
            for chunk in self.render(request, face, caption):
                if chunk.last:
                    info = dict(chunk.info)
                    if face is not None:
                        info["face"] = face.describe()
                    if request.caption:
                        info["caption"] = reading.info()
                    if self.faces_made != made:  # a new face: the one-off cost, reported apart from the clip's
                        info["timings"] = {**info.get("timings", {}), "face": round(face_s, 3)}
                    chunk = replace(chunk, info=info)
                yield chunk

    def _face_for(self, request: Request, reading: CaptionReading) -> Face | None:
        current = self.face
        wanted = reading.gender
        number = (current.number + 1) if current is not None else 1
        if request.style_image is not None:
            image = self.style_face(Path(request.style_image))  # GenerationError: keep the current face
            gender = wanted or (current.gender if current is not None and current.source == "style" else None)
            face = Face(image, "style", gender, request.caption, 0, number, Path(request.style_image).name,
                        dict(reading.description))
            return self._adopt(replace(face, hires=self.face_detail(face, Path(request.style_image))))
        described = {k: v for k, v in reading.description.items() if self.can_draw(k)}
        if current is not None:
            if current.source == "style" or not current.description:  # a style face (or one from before descriptions)
                if wanted is None or current.gender in (None, wanted):
                    if wanted is not None and current.gender is None:  # a style face learns its gender
                        current = replace(current, gender=wanted, description={**current.description, "gender": wanted})
                        self._adopt(current, made=False)
                    return current
            else:
                drawn_as = current.description
                if all(drawn_as.get(k) == v for k, v in described.items()):
                    return current
                if wanted is None or wanted == drawn_as.get("gender"):  # more of the same person: a face from both
                    described = {**drawn_as, **described}
        described.setdefault("gender", wanted or default_gender(self.call_id))
        face = self.draw_face(described, call_seed(self.call_id, "face", number), number)
        return self._adopt(replace(face, hires=self.face_detail(face, None)) if face.hires is None else face)

    def _adopt(self, face: Face, made: bool = True) -> Face:
        self._face, self._loaded = face, True
        if made:
            self.faces_made += 1
            logger.info("call %s: face %d (%s, %s)", self.call_id, face.number, face.source, face.gender or "gender unknown")
        if self.store is not None:
            try:
                self.store.save(face)
            except OSError:
                logger.exception("call %s: could not keep its face in %s", self.call_id, self.store.folder)
        return face
