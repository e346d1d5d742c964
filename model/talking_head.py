"""The receiver's real generator: request -> talking-head clip (paper sections IV and V, end to end).

    caption      -> caption index (AdaGN conditioning, or classifier guidance, Eq. 8-9)
    speech text  -> normalised text -> voice (espeak-ng or YourTTS) -> 16 kHz waveform
                 -> one-second chunks -> joint sampling per chunk with the TTS audio replacing the
                    audio branch (Eq. 10) and reconstruction guidance on the video (Eq. 11); every
                    chunk after the first starts with the last ``prefix_frames`` frames of the chunk
                    before, imposed by the same replacement, so the face does not jump
                 -> lip-sync refinement over the frames with the whole utterance's audio (IV-F)
    no text      -> one chunk of video and audio jointly from noise (the paper's unconditional or
                    caption-only generation)
    style image  -> the still face driven by the speech (or by audio the joint model generated) (IV-E)
    the call's face (not in the paper; ``model/call.py``): every utterance of a call is one person.
                    A face is drawn once per call by the portrait model (or taken from the sender's
                    style image) and the joint model's video branch reads it as its reference at
                    every chunk (``UNetConfig.reference``). ``GeneratorSettings.face = "paper"``
                    keeps the paper's path: every chunk invents the face from noise.

The pieces: chunked joint sampling in ``model/chunked.py`` (how chunks overlap), the speech as the
voice makes it in ``model/speaking.py``, the clean-up in ``model/postfilter.py``, loading a weights
folder in ``model/loading.py``; the call's face in ``model/call.py``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from model.defaults import GeneratorSettings
from model.audio import fit_audio
from model.call import GENDER_CAPTIONS, GENDERS, Call, CaptionReading, Face, GenerationError, read_gender
from model.chunked import ChunkSampler, plan_chunks
from model.clip import AUDIO_RATE, VIDEO_FPS, Chunk, Clip, Request
from model.postfilter import Cleanup, sharpen_luma
from model.speaking import Speaking

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# how sure the gender judge must be of a style picture nothing names before the voice follows it
# (below it the voice picks any speaker, as before the judge): a wrong guess is a man's voice on a woman
PICTURE_SURE = 0.9

__all__ = ["GenerationError", "TalkingHead", "TalkingHeadCall", "TalkingHeadSettings", "plan_chunks"]


# The settings moved to model/defaults.py (stdlib only, so parsers build them without torch).
TalkingHeadSettings = GeneratorSettings


class TalkingHead:
    """``Generator`` over the joint diffusion model, a voice and the lip-sync network.

    Every component is passed in (see ``from_weights``) so tests can build it from tiny models.
    Not thread-safe by design: the receiver calls it from its one generation thread.
    """

    name = "talking-head"

    def __init__(
        self,
        diffusion,
        config,
        *,
        voice=None,
        lipsync=None,
        classifier=None,
        audio_guide=None,
        portrait=None,
        restorer=None,
        upscaler=None,
        captions=None,
        gender_judge=None,
        settings: GeneratorSettings = GeneratorSettings(),
        sources: dict[str, str] | None = None,
    ) -> None:
        self.diffusion = diffusion.eval()
        self.portrait = portrait  # model.portrait.sample.PortraitModel or None
        self.restorer = restorer  # model.restore.train.Restorer or None
        self.upscaler = upscaler  # model.restore.restorer.Restorer with scale > 1 (64 -> 256), or None
        self.captions = captions  # model.describe.encoder.CaptionEncoder or None (then captions are read for gender)
        # model.evaluation.gender.GenderClassifier or None: the voice's gender for a style picture nothing names
        self.gender_judge = gender_judge
        self.config = config
        self.voice = voice
        self.lipsync = lipsync
        self.classifier = classifier.eval() if classifier is not None else None
        self.audio_guide = audio_guide.eval() if audio_guide is not None else None
        self.settings = settings  # also makes self.chunks, the chunked joint sampler (model/chunked.py)
        self.sources = dict(sources or {})
        cfg = config.unet
        if settings.prefix_frames >= cfg.frames:
            raise ValueError(f"prefix_frames must be below the model's {cfg.frames} frames per chunk")
        settings.check_schedule(config.schedule.timesteps)  # at start, not on every utterance
        if config.video_fps != VIDEO_FPS or config.sample_rate != AUDIO_RATE:
            raise ValueError(f"the model runs at {config.video_fps} fps / {config.sample_rate} Hz, textcall at {VIDEO_FPS} / {AUDIO_RATE}")
        if cfg.audio_samples * config.video_fps != cfg.frames * config.sample_rate:
            raise ValueError("a chunk's audio and video must span the same time")
        if portrait is not None and portrait.config.image_size != cfg.image_size:
            raise ValueError(f"the portrait model draws {portrait.config.image_size}px faces, the joint model {cfg.image_size}px")
        if upscaler is not None and upscaler.net.cfg.image_size != cfg.image_size:
            raise ValueError(f"the upscaler takes {upscaler.net.cfg.image_size}px frames, the joint model draws {cfg.image_size}px")
        self.output_size  # refuses a size this generator cannot make
        self._speakers: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._calls: OrderedDict[str, TalkingHeadCall] = OrderedDict()  # generate()'s calls, by session
        self._lock = threading.Lock()

    @property
    def settings(self) -> GeneratorSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: GeneratorSettings) -> None:
        self._settings = settings
        self.chunks = ChunkSampler(self.diffusion, self.config, settings, classifier=self.classifier,
                                   audio_guide=self.audio_guide)

    @property
    def output_size(self) -> int:
        """The side of the frames it hands out: ``settings.size``, or the upscaler's when one is loaded."""
        native = self.config.unet.image_size
        size = self.settings.size or (self.upscaler.output_size if self.upscaler is not None else native)
        if size != native and (self.upscaler is None or self.upscaler.output_size != size):
            raise ValueError(f"--size {size}: this generator makes {native}px frames"
                             + (f" and {self.upscaler.output_size}px through its upscaler" if self.upscaler is not None
                                else " and has no upscaler (the weights' upscale/)"))
        return size

    @property
    def upscales(self) -> bool:
        return self.output_size != self.config.unet.image_size

    def face_detail(self, face: Face, style_image: Path | None = None) -> np.ndarray | None:
        """The call's face at the output size, the reference the upscaler copies detail from: the
        sender's style image framed at that size, else the face upscaled once on its own. None when the
        output is the joint model's size."""
        if not self.upscales:
            return None
        if face.hires is not None and face.hires.shape[0] == self.output_size:
            return face.hires
        if style_image is not None:
            from model.lipsync.face import NoFaceError
            from model.lipsync.style import StyleImageError, read_image, style_frame

            try:
                return style_frame(read_image(style_image), self.output_size)
            except (StyleImageError, NoFaceError, OSError):
                pass  # the 64-pixel face was framed from it already; upscale that
        return self.upscaler.upscale(face.image[None], None)[0]

    def _upscale(self, video: np.ndarray, reference: np.ndarray | None, timings: dict) -> np.ndarray:
        if not self.upscales:
            return video
        t0 = time.perf_counter()
        out = self.upscaler.upscale(video, reference)
        timings["upscale"] = timings.get("upscale", 0.0) + time.perf_counter() - t0
        return out

    @property
    def uses_reference(self) -> bool:
        """Whether utterances copy the call's face (settings, and a joint model with a reference input)."""
        return self.settings.face == "call" and bool(getattr(self.config.unet, "reference", False))

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def from_weights(
        cls,
        folder: str | Path = WEIGHTS_DIR,
        *,
        device: str = "cpu",
        settings: GeneratorSettings = GeneratorSettings(),
    ) -> TalkingHead:
        """Load ``folder/{diffusion,classifier,autoguide,lipsync,portrait,restore}`` (all but the first
        optional) and the voice (``model/loading.py``)."""
        from model.loading import load_components

        return cls(**load_components(folder, device, settings), settings=settings)

    # ---------------------------------------------------------------------------------------- calls
    def open_call(self, call_id: str, *, store: str | Path | None = None) -> TalkingHeadCall:
        """A call: say each utterance into it and every one shows the same person (``model/call.py``).
        ``store``: a folder that keeps the call's face across reconnects and restarts."""
        return TalkingHeadCall(self, call_id, store=store)

    def generate(self, request: Request) -> Clip:
        """One utterance, in the call named by ``request.session`` (kept in memory, not on disk)."""
        key = request.session or "call"
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = self.open_call(key)
            while len(self._calls) > 256:
                self._calls.popitem(last=False)
        self._calls.move_to_end(key)
        return call.say(request)

    def caption_index(self, caption: str) -> int:
        try:
            return self.config.caption_index(caption)
        except ValueError as exc:
            raise GenerationError(str(exc)) from None

    def read_caption(self, caption: str) -> CaptionReading:
        """What ``caption`` says of the person: the caption encoder's reading when one is loaded, else its gender."""
        if self.captions is None or not caption.strip():
            return read_gender(caption)
        reading = self.captions.read(caption)
        return CaptionReading(caption, reading.said(), reading.unknown)

    def reading_condition(self, reading: CaptionReading) -> int | dict:
        """What the joint model reads of a caption: for one that reads description vectors
        (``UNetConfig.attribute_slots``), all the reading says; for a caption-index one, its gender's
        caption (the paper's two), or the null caption when it names none (the joint model reads
        the rest from the call's face)."""
        if self.config.unet.describes:
            return dict(reading.description)
        if reading.text.strip().lower() in (c.lower() for c in self.config.captions):
            return self.caption_index(reading.text)
        return self.caption_index(GENDER_CAPTIONS[reading.gender]) if reading.gender else 0

    def _render(self, request: Request, face: Face | None, caption: int | dict, call: TalkingHeadCall) -> Iterator[Chunk]:
        """One utterance, chunk by chunk: the voice, then the still animation (style image) or chunked
        joint sampling (with the call's face as reference when ``uses_reference``), clean-up, lip
        sync and upscaling, then the call's head motion on the output frames (a copied face: the
        call's or the style image's), each chunk handed out as soon as its frames are final."""
        timings: dict[str, float] = {}
        gender, said_by = self._voice_gender(face, caption)
        reference = face.image if face is not None and self.uses_reference else None
        detail = self.face_detail(face) if face is not None else None  # the upscaler's reference (or None)

        speech = None
        text = request.text.strip()
        if text:
            t0 = time.perf_counter()
            speech = self._speak(text, gender, call.call_id)
            timings["voice"] = time.perf_counter() - t0  # the first sentences; the rest after the first chunk
            if speech.empty:  # nothing sayable in the text: the no-text path
                logger.warning("nothing sayable in %r; rendering without speech", text[:60])
                speech = None

        still = request.style_image is not None
        # head motion (model/motion.py) on a copied face: the call's face, or the style image
        moved = self.settings.head_motion and (reference is not None or still)
        # the upscaler's soft output sharpened (model/postfilter.sharpen_luma); a style image keeps its detail
        sharpen = self.settings.sharpen if self.upscales and not still else 0.0
        info: dict[str, Any] = {
            "generator": self.name,
            "mode": request.mode,
            **({"caption_condition": {k: v for k, v in caption.items() if v is not None}} if isinstance(caption, dict)
               else {"caption_index": caption}),
            "sampler": f"{self.settings.sampler}-{self.settings.steps}",
            "audio_autoguidance": self.chunks.autoguidance(speech),
            "postfilter": self.settings.postfilter and not still,
            "restored": False,  # the clean-up was the restorer (model/restore)
            "head_motion": moved,
            "sharpen": sharpen,
            "reference": reference is not None and not still,  # the frames copy the call's face
            "size": self.output_size,  # the upscaler's (copying ``detail``) when not the joint model's
            **({"speaker": speech.speaker, "speaker_gender": {"gender": gender, "from": said_by}}
               if speech is not None else {}),  # the voice's speaker id, and where its gender came from
            "timings": timings,
        }
        if still and speech is not None:
            speech = speech.whole(timings)
        pieces = (self._animate_still(request, caption, speech, timings, face, detail) if still
                  else self._frames(caption, request.seed, speech, reference, timings, detail))
        first, index = 0, 0
        spf = AUDIO_RATE // VIDEO_FPS
        for video, audio, last in pieces:
            if len(video) == 0 and not last:
                continue
            if video.shape[1] != self.output_size:  # (lip sync on the output frames upscaled them already)
                video = self._upscale(video, detail, timings)
            if moved:  # on the final frames: everything before worked on the face in its own pose
                video = self._move(video, call)
            if sharpen:  # last: the frames as they are shown
                video = sharpen_luma(video, sharpen)
            if last:
                info["restored"] = "restore" in timings
                info["timings"] = {k: round(v, 3) for k, v in timings.items()}
            yield Chunk(np.ascontiguousarray(video), audio[: len(video) * spf].astype(np.float32), index, first,
                        VIDEO_FPS, AUDIO_RATE, last=last, info=info if last else {})
            first, index = first + len(video), index + 1

    @property
    def _lipsync_box(self) -> int | None:
        """Lip sync on the upscaled frames (``settings.lipsync_at``): the side its face box is found
        at (the joint model's), else None (lip sync on the joint model's frames, before upscaling)."""
        if self.upscales and self.settings.lipsync_at == "output":
            return self.config.unet.image_size
        return None

    def _frames(self, caption: int | dict, seed: int, speech: np.ndarray | None, reference: np.ndarray | None,
                timings: dict, detail: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
        """The sampled chunks through clean-up and lip sync: ``(frames, audio, last)`` as
        soon as each frame is final. The clean-up looks a few frames ahead (a Gaussian over time), so
        each piece ends that far behind the frames sampled so far. Lip sync reads the speech: the
        first sentences for the first chunk, the whole of it after; audio sampled with the frames (no
        speech text) is known only at the end, so there the frames wait for it (one chunk at the
        default ``unconditional_seconds``). With lip sync on the output frames (``_lipsync_box``) the
        frames are upscaled (copying ``detail``) before it."""
        spf = AUDIO_RATE // VIDEO_FPS
        cleanup = Cleanup(self.restorer, reference, timings, self.chunks.autocast) if self.settings.postfilter else None
        lipsync = self.lipsync if self.settings.lipsync else None
        box = self._lipsync_box if lipsync is not None else None
        lips, held, sound = None, [], []
        pending = np.zeros(0, np.float32)  # audio of the frames sampled but not handed out yet

        def whole() -> np.ndarray:
            return fit_audio(speech.whole(timings) if isinstance(speech, Speaking) else speech, n_frames * spf)

        for frames, audio, last, n_frames in self.chunks.sampled(caption, seed, speech, reference, timings):
            pending = np.concatenate([pending, audio])
            if speech is None:
                sound.append(audio)  # lip sync reads it all at the end
            ready = frames if cleanup is None else cleanup.push(frames, last)
            if box is not None:
                ready = self._upscale(ready, detail, timings)
            t0 = time.perf_counter()
            if lipsync is not None and speech is None:
                held.append(ready)
                ready = lipsync.refine(np.concatenate(held), np.concatenate(sound), box_size=box) if last else ready[:0]
            elif lipsync is not None and len(ready):
                if lips is None:  # the speech may still be coming: the first chunk's mouths need only its start
                    lips = (lipsync.growing(speech.first, VIDEO_FPS, box_size=box) if n_frames is None
                            else lipsync.stream(whole(), n_frames, VIDEO_FPS, box_size=box))
                elif n_frames is not None and lips.n_frames is None:
                    lips.extend(whole(), n_frames)
                ready = lips.push(ready)
            if lipsync is not None:
                timings["lipsync"] = timings.get("lipsync", 0.0) + time.perf_counter() - t0
            yield ready, pending[: len(ready) * spf], last
            pending = pending[len(ready) * spf :]

    # -- speech ------------------------------------------------------------------------------------
    def _speak(self, text: str, gender: str | None, call_id: str) -> Speaking:
        """The voice for ``text``: its first sentences now (enough audio for the first chunk), the rest
        once that chunk is out (``Speaking``)."""
        if self.voice is None:
            raise GenerationError("this receiver has no voice loaded; speech text cannot be rendered")
        if len(text) / 25 > self.settings.max_speech_seconds:  # faster than any voice speaks: refused before anything
            raise GenerationError(f"the text is too long for this receiver's limit of {self.settings.max_speech_seconds:.0f} s "
                                  "of speech per utterance; send it in parts")
        need = self.config.unet.frames * (AUDIO_RATE // VIDEO_FPS) + AUDIO_RATE // 2  # a chunk and half a second
        return Speaking(self.voice, text, self._speaker_for(call_id, gender), need, self.settings.max_speech_seconds)

    def _voice_gender(self, face: Face | None, caption: int | dict) -> tuple[str | None, str | None]:
        """The gender the voice speaks in, and who said it: the call's face (drawn as, or told by a
        caption), else this utterance's caption, else, for a style picture nothing named, what the
        gender judge sees in it when it is sure (``PICTURE_SURE``); ``(None, None)`` leaves the voice
        free to pick any speaker (kept for the call)."""
        if face is not None and face.gender:
            return face.gender, "face"
        said = caption.get("gender") if isinstance(caption, dict) else _gender(self.config.captions[caption]) if caption else None
        if said:
            return said, "caption"
        if face is not None and face.source == "style" and self.gender_judge is not None:
            p = self.gender_judge.probabilities(face.image[None])[0]
            if p.max() >= PICTURE_SURE:
                return GENDERS[int(p.argmax())], "picture"
            logger.info("style picture %s: the gender judge is unsure (%.2f); any speaker", face.detail, p.max())
        return None, None

    def _speaker_for(self, call_id: str, gender: str | None) -> str:
        """A speaker of the face's (or caption's) gender, chosen once per call and gender and then kept."""
        from model.speech.voice import choose_speaker

        key = (call_id, gender or "")
        if key not in self._speakers:
            rng = np.random.default_rng(zlib.crc32(f"{call_id}|{gender}".encode()))
            self._speakers[key] = choose_speaker(self.voice, gender, rng)
            while len(self._speakers) > 1024:
                self._speakers.popitem(last=False)
        self._speakers.move_to_end(key)
        return self._speakers[key]

    # -- head motion, clean-up, lip sync and style images -----------------------------------------
    def _move(self, video: np.ndarray, call: TalkingHeadCall) -> np.ndarray:
        """The call's head motion (``model/motion.py``) over these frames, its clock running on from the
        call's previous utterance."""
        from model.motion import HeadMotion, apply_pose

        start, call.video_seconds = call.video_seconds, call.video_seconds + len(video) / VIDEO_FPS
        return apply_pose(video, HeadMotion.for_call(call.call_id).pose(start + np.arange(len(video)) / VIDEO_FPS))

    def _animate_still(self, request: Request, caption: int | dict, speech, timings, face: Face | None = None,
                       detail: np.ndarray | None = None):
        """The style image driven by the speech (or by audio the joint model sampled): ``(frames,
        audio, last)`` pieces of one chunk's stride each; with lip sync on the output frames
        (``_lipsync_box``), the image at the output size (``detail``, or framed at it) is driven."""
        if self.lipsync is None:
            raise GenerationError("this receiver has no lip-sync model loaded, so it cannot animate a style image")
        image = face.image if face is not None and face.source == "style" else self._style_face(request.style_image)
        box = self._lipsync_box
        if box is not None:
            if face is not None and face.source == "style" and detail is not None:
                image = detail
            else:
                image = self._hires_style(request.style_image, image, timings)
        if speech is None:  # the paper: audio generated from noise by the joint model drives the image
            t0 = time.perf_counter()
            _, audio = self.chunks.sample_chunks(caption, request.seed)
            timings["sampling"] = time.perf_counter() - t0
        else:
            audio = speech
        spf = AUDIO_RATE // VIDEO_FPS
        n = max(1, math.ceil(len(audio) / spf))
        audio = fit_audio(audio, n * spf)
        lips = self.lipsync.stream(audio, n, VIDEO_FPS, still=image, box_size=box)
        step = self.config.unet.frames - self.settings.prefix_frames
        for start in range(0, n, step):
            stop = min(n, start + step)
            t0 = time.perf_counter()
            video = lips.push(np.broadcast_to(image, (stop - start, *image.shape)))
            timings["lipsync"] = timings.get("lipsync", 0.0) + time.perf_counter() - t0
            yield video, audio[start * spf : stop * spf], stop == n

    def _hires_style(self, path: Path, image: np.ndarray, timings: dict) -> np.ndarray:
        """The style image framed at the output size, else its framing at the joint model's upscaled."""
        from model.lipsync.face import NoFaceError
        from model.lipsync.style import StyleImageError, read_image, style_frame

        try:
            return style_frame(read_image(path), self.output_size)
        except (StyleImageError, NoFaceError, OSError):
            return self._upscale(image[None], None, timings)[0]

    def _style_face(self, path: Path) -> np.ndarray:
        """The style image's face framed like the corpus at the call's size (so a style clip
        matches the others and the session recording); clear errors for what is not a face image."""
        from model.lipsync.face import NoFaceError
        from model.lipsync.style import StyleImageError, read_image, style_frame

        try:
            return style_frame(read_image(path), self.config.unet.image_size)
        except (StyleImageError, NoFaceError) as exc:
            raise GenerationError(f"style image {Path(path).name}: {exc}") from None

    # -- the call's face ---------------------------------------------------------------------------
    def draw_face(self, description: dict, seed: int) -> tuple[np.ndarray, str]:
        """One face for a new call, as ``description`` says (attribute -> value; always a gender):
        uint8 ``[S, S, 3]`` and what drew it.

        The portrait model when loaded (``settings.face_sampler`` with ``face_steps`` steps; a
        description model reads every attribute, a caption model the gender), else the joint model
        itself: one caption-only chunk with the clip sampler at ``face_steps`` steps (at most 5x the
        clip's), cleaned like any chunk, and its middle frame.
        """
        if self.portrait is not None:
            wanted = GENDER_CAPTIONS[description["gender"]]
            if self.portrait.config.describes:
                from model.describe.attributes import vector

                wanted = vector(description)
            with self.chunks.autocast():
                face = self.portrait.sample(wanted, seed=seed, sampler=self.settings.face_sampler,
                                            steps=self.settings.face_steps, cfg_scale=self.settings.face_cfg)
            return face[0], "portrait"
        steps = min(self.settings.face_steps, 5 * self.settings.steps)
        # the whole description for a joint model that reads it, its gender's caption for one that does not
        frames, _ = self.chunks.sample_chunk(self.chunks.guidance(description), None, None, seed, steps=steps)
        if self.settings.postfilter:
            from model.postfilter import postfilter

            frames = postfilter(frames)
        return frames[len(frames) // 2].copy(), "joint"


class TalkingHeadCall(Call):
    """A call on a ``TalkingHead``: one face for all its utterances (``model/call.py`` says when it changes)."""

    def __init__(self, head: TalkingHead, call_id: str, *, store: str | Path | None = None) -> None:
        super().__init__(call_id, store=store, lock=head._lock)
        self.head = head
        self.video_seconds = 0.0  # of video rendered in this call so far: the head motion's clock

    def read_caption(self, caption: str) -> CaptionReading:
        return self.head.read_caption(caption)

    def caption_condition(self, reading: CaptionReading) -> int | dict:
        return self.head.reading_condition(reading)

    def can_draw(self, attribute: str) -> bool:
        portrait = self.head.portrait
        return attribute == "gender" or bool(portrait is not None and getattr(portrait.config, "describes", False))

    def style_face(self, path: Path) -> np.ndarray:
        if self.head.lipsync is None:  # the utterance that brings it animates the still (IV-E)
            raise GenerationError("this receiver has no lip-sync model loaded, so it cannot animate a style image")
        return self.head._style_face(path)

    def draw_face(self, description: dict, seed: int, number: int) -> Face:
        from model.describe.attributes import text_of

        t0 = time.perf_counter()
        image, source = self.head.draw_face(description, seed)
        logger.info("call %s: drew %s with the %s model in %.1f s", self.call_id, text_of(description), source, time.perf_counter() - t0)
        return Face(image, source, description["gender"], text_of(description), seed, number, description=dict(description))

    def face_detail(self, face: Face, style_image: Path | None) -> np.ndarray | None:
        return self.head.face_detail(face, style_image)

    def _face_for(self, request: Request, reading: CaptionReading) -> Face | None:
        if not self.head.uses_reference:
            return None  # the paper's path (or a joint model without a reference input): every chunk invents its face
        return super()._face_for(request, reading)

    def render(self, request: Request, face: Face | None, caption: int | dict) -> Iterator[Chunk]:
        return self.head._render(request, face, caption, self)


def _gender(caption: str) -> str | None:
    from model.speech.voice import gender_of_caption

    return gender_of_caption(caption)
