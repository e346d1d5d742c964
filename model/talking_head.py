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
                    every chunk (``UNetConfig.reference``). ``TalkingHeadSettings.face = "paper"``
                    keeps the paper's path: every chunk invents the face from noise.

Chunks overlap: chunk ``k`` covers frames ``[k*S, k*S + F)`` with stride ``S = F - prefix_frames``,
and the audio under those frames. Only the frames a chunk adds beyond its prefix are kept, so the
video is exactly as long as the speech and the audio in the clip is the whole TTS waveform.
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

from model import defaults
from model.defaults import GeneratorSettings
from model.call import GENDER_CAPTIONS, Call, Face, GenerationError
from model.clip import AUDIO_RATE, VIDEO_FPS, Chunk, Clip, Request

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

__all__ = ["GenerationError", "TalkingHead", "TalkingHeadCall", "TalkingHeadSettings", "plan_chunks"]


# The settings moved to model/defaults.py (stdlib only, so parsers build them without torch).
TalkingHeadSettings = GeneratorSettings


def plan_chunks(n_frames: int, chunk_frames: int, prefix_frames: int) -> list[int]:
    """First frame of every chunk needed to cover ``n_frames`` frames.

    >>> plan_chunks(40, 16, 4)
    [0, 12, 24]
    """
    if chunk_frames < 1 or not 0 <= prefix_frames < chunk_frames:
        raise ValueError(f"need 0 <= prefix_frames ({prefix_frames}) < chunk_frames ({chunk_frames})")
    stride = chunk_frames - prefix_frames
    extra = max(0, n_frames - chunk_frames)
    return [k * stride for k in range(1 + math.ceil(extra / stride))]


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
        settings: TalkingHeadSettings = TalkingHeadSettings(),
        sources: dict[str, str] | None = None,
    ) -> None:
        self.diffusion = diffusion.eval()
        self.portrait = portrait  # model.portrait.sample.PortraitModel or None
        self.restorer = restorer  # model.restore.train.Restorer or None
        self.config = config
        self.voice = voice
        self.lipsync = lipsync
        self.classifier = classifier.eval() if classifier is not None else None
        self.audio_guide = audio_guide.eval() if audio_guide is not None else None
        self.settings = settings
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
        self._speakers: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._calls: OrderedDict[str, TalkingHeadCall] = OrderedDict()  # generate()'s calls, by session
        self._lock = threading.Lock()

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
        settings: TalkingHeadSettings = TalkingHeadSettings(),
    ) -> TalkingHead:
        """Load ``folder/{diffusion,classifier,autoguide,lipsync,portrait}`` (all but the first
        optional) and the voice. ``autoguide`` is loaded only when ``settings.audio_guidance`` is not
        1, ``portrait`` only for ``settings.face == "call"``."""
        from model.diffusion.checkpoint import load_model
        from model.diffusion.config import check_autoguide, check_classifier
        from model.speech import load_voice

        folder = Path(folder)
        if not (folder / "diffusion" / "config.json").is_file():
            raise FileNotFoundError(f"{folder / 'diffusion'} holds no diffusion model (config.json + model.safetensors)")
        diffusion, config = load_model(folder / "diffusion", device)
        sources = {"diffusion": str(folder / "diffusion")}
        classifier = None
        if (folder / "classifier" / "config.json").is_file():
            classifier, cconfig = load_model(folder / "classifier", device)
            check_classifier(config, cconfig)
            sources["classifier"] = str(folder / "classifier")
        audio_guide = None
        if settings.audio_guidance != 1.0 and (folder / "autoguide" / "config.json").is_file():
            audio_guide, gconfig = load_model(folder / "autoguide", device)
            check_autoguide(config, gconfig)
            sources["autoguide"] = str(folder / "autoguide")
        lipsync = None
        if settings.lipsync and (folder / "lipsync" / "config.json").is_file():
            from model.lipsync import LipSync

            lipsync = LipSync.load(folder / "lipsync", device=device)
            sources["lipsync"] = str(folder / "lipsync")
        portrait = restorer = None
        if settings.face == "call" and (folder / "portrait" / "config.json").is_file():
            from model.portrait.sample import PortraitModel

            portrait = PortraitModel.load(folder / "portrait", device)
            sources["portrait"] = str(folder / "portrait")
        if settings.face == "call" and settings.postfilter and (folder / "restore" / "config.json").is_file():
            from model.restore.train import Restorer

            restorer = Restorer.load(folder / "restore", device)
            sources["restore"] = str(folder / "restore")
        voice = load_voice(settings.voice, device=device)
        sources["voice"] = settings.voice
        return cls(diffusion, config, voice=voice, lipsync=lipsync, classifier=classifier, audio_guide=audio_guide,
                   portrait=portrait, restorer=restorer, settings=settings, sources=sources)

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

    def _render(self, request: Request, face: Face | None, caption: int, call: TalkingHeadCall) -> Iterator[Chunk]:
        """One utterance, chunk by chunk: the voice, then the still animation (style image) or chunked
        joint sampling (with the call's face as reference when ``uses_reference``), head motion,
        clean-up and lip sync, each chunk handed out as soon as its frames are final."""
        timings: dict[str, float] = {}
        gender = (face.gender if face is not None else None) or (_gender(self.config.captions[caption]) if caption else None)
        reference = face.image if face is not None and self.uses_reference else None

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
        moved = reference is not None and self.settings.head_motion and not still
        info: dict[str, Any] = {
            "generator": self.name,
            "mode": request.mode,
            "caption_index": caption,
            "sampler": f"{self.settings.sampler}-{self.settings.steps}",
            "audio_autoguidance": self._autoguidance(speech),
            "postfilter": self.settings.postfilter and not still,
            "restored": False,  # the clean-up was the restorer (model/restore)
            "head_motion": moved,
            "reference": reference is not None and not still,  # the frames copy the call's face
            "timings": timings,
        }
        if still and speech is not None:
            speech = speech.whole(timings)
        pieces = (self._animate_still(request, caption, speech, timings, face) if still
                  else self._frames(caption, request.seed, speech, reference, call, timings, moved))
        first, index = 0, 0
        spf = AUDIO_RATE // VIDEO_FPS
        for video, audio, last in pieces:
            if len(video) == 0 and not last:
                continue
            if last:
                info["restored"] = "restore" in timings
                info["timings"] = {k: round(v, 3) for k, v in timings.items()}
            yield Chunk(np.ascontiguousarray(video), audio[: len(video) * spf].astype(np.float32), index, first,
                        VIDEO_FPS, AUDIO_RATE, last=last, info=info if last else {})
            first, index = first + len(video), index + 1

    def _frames(self, caption: int, seed: int, speech: np.ndarray | None, reference: np.ndarray | None,
                call: TalkingHeadCall, timings: dict, moved: bool) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
        """The sampled chunks through head motion, clean-up and lip sync: ``(frames, audio, last)`` as
        soon as each frame is final. The clean-up looks a few frames ahead (a Gaussian over time), so
        each piece ends that far behind the frames sampled so far. Lip sync reads the speech: the
        first sentences for the first chunk, the whole of it after; audio sampled with the frames (no
        speech text) is known only at the end, so there the frames wait for it (one chunk at the
        default ``unconditional_seconds``)."""
        spf = AUDIO_RATE // VIDEO_FPS
        cleanup = _Cleanup(self, reference, timings) if self.settings.postfilter else None
        lipsync = self.lipsync if self.settings.lipsync else None
        lips, held, sound = None, [], []
        pending = np.zeros(0, np.float32)  # audio of the frames sampled but not handed out yet

        def whole() -> np.ndarray:
            return _pad(speech.whole(timings) if isinstance(speech, _Speaking) else speech, n_frames * spf)

        for frames, audio, last, n_frames in self._sampled(caption, seed, speech, reference, timings):
            pending = np.concatenate([pending, audio])
            if speech is None:
                sound.append(audio)  # lip sync reads it all at the end
            if moved:
                frames = self._move(frames, call)
            ready = frames if cleanup is None else cleanup.push(frames, last)
            t0 = time.perf_counter()
            if lipsync is not None and speech is None:
                held.append(ready)
                ready = lipsync.refine(np.concatenate(held), np.concatenate(sound)) if last else ready[:0]
            elif lipsync is not None and len(ready):
                if lips is None:  # the speech may still be coming: the first chunk's mouths need only its start
                    lips = (lipsync.growing(speech.first, VIDEO_FPS) if n_frames is None
                            else lipsync.stream(whole(), n_frames, VIDEO_FPS))
                elif n_frames is not None and lips.n_frames is None:
                    lips.extend(whole(), n_frames)
                ready = lips.push(ready)
            if lipsync is not None:
                timings["lipsync"] = timings.get("lipsync", 0.0) + time.perf_counter() - t0
            yield ready, pending[: len(ready) * spf], last
            pending = pending[len(ready) * spf :]

    # -- speech ------------------------------------------------------------------------------------
    def _speak(self, text: str, gender: str | None, call_id: str) -> _Speaking:
        """The voice for ``text``: its first sentences now (enough audio for the first chunk), the rest
        once that chunk is out (``_Speaking``)."""
        if self.voice is None:
            raise GenerationError("this receiver has no voice loaded; speech text cannot be rendered")
        if len(text) / 25 > self.settings.max_speech_seconds:  # faster than any voice speaks: refused before anything
            raise GenerationError(f"the text is too long for this receiver's limit of {self.settings.max_speech_seconds:.0f} s "
                                  "of speech per utterance; send it in parts")
        need = self.config.unet.frames * (AUDIO_RATE // VIDEO_FPS) + AUDIO_RATE // 2  # a chunk and half a second
        return _Speaking(self.voice, text, self._speaker_for(call_id, gender), need, self.settings.max_speech_seconds)

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

    # -- sampling ----------------------------------------------------------------------------------
    def _guidance(self, caption: int, reference: np.ndarray | None = None):
        """One request's guidance (its caption and face, the settings' scales), built once for its chunks."""
        from model.diffusion.generate import GuidanceConfig, build_guidance

        s = self.settings
        guidance = GuidanceConfig(cfg_scale=s.cfg_scale, classifier_scale=s.classifier_scale, recon_scale=s.recon_scale,
                                  audio_guide_scale=s.audio_guidance, audio_contrast=s.audio_contrast)
        use_classifier = self.classifier is not None and s.classifier_scale > 0
        return build_guidance(self.diffusion, self.config, guidance=guidance, caption_index=caption, reference=reference,
                              classifier=self.classifier if use_classifier else None, audio_guide=self.audio_guide)

    def _sample_chunk(self, guidance, audio: np.ndarray | None, prefix: np.ndarray | None, seed: int,
                      steps: int | None = None):
        from model.diffusion.generate import generate_av

        s = self.settings
        steps = steps or s.steps
        with self._autocast():
            return generate_av(
                guidance,
                audio_condition=audio,
                video_prefix=prefix,
                seed=seed,
                sampler=s.sampler,
                steps=None if s.sampler == "ddpm" and steps >= self.config.schedule.timesteps else steps,
            )

    def _autocast(self):
        import torch

        device = next(self.diffusion.parameters()).device.type
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.settings.precision == "bf16")

    def _sample_chunks(self, caption: int, seed: int, speech: np.ndarray | None = None,
                       reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``_sampled`` joined: video uint8 ``[N, H, W, 3]`` and audio float32 ``[N * 1000]``."""
        pieces = list(self._sampled(caption, seed, speech, reference, {}))
        return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])

    def _sampled(self, caption: int, seed: int, speech: np.ndarray | None, reference: np.ndarray | None,
                 timings: dict) -> Iterator[tuple[np.ndarray, np.ndarray, bool, int]]:
        """Chunked joint sampling, one chunk at a time: ``(new frames, their audio, last, N)`` (N is None
        while the voice is still speaking, for the first chunk).

        With ``speech``, N frames cover it, every chunk's audio is replaced by the speech under it
        and the audio handed out is the speech; without, N frames last ``unconditional_seconds`` (the
        paper's one-second joint sample, continued) and each chunk adds the audio it sampled for
        its new frames. Every chunk after the first starts with the last ``prefix_frames`` frames
        of the chunk before (given back unchanged, so only the frames after them are new).
        ``reference`` (uint8 ``[H, W, 3]``): the call's face, read by every chunk.
        """
        cfg = self.config.unet
        spf = AUDIO_RATE // VIDEO_FPS  # audio samples per video frame
        p = self.settings.prefix_frames
        guidance = self._guidance(caption, reference)
        first = None
        if isinstance(speech, _Speaking) and not speech.complete:
            # the first chunk needs only the first second of speech: it is sampled and handed out before
            # the voice says the rest (there is more than a chunk of speech: its frames are all kept)
            t0 = time.perf_counter()
            first = self._sample_chunk(guidance, _pad(speech.first, cfg.frames * spf), None, seed)
            timings["sampling"] = timings.get("sampling", 0.0) + time.perf_counter() - t0
            yield first[0].copy(), speech.first[: cfg.frames * spf].copy(), False, None
        if isinstance(speech, _Speaking):
            speech = speech.whole(timings)
        if speech is None:
            n_frames = max(1, round(self.settings.unconditional_seconds * VIDEO_FPS))
        else:
            n_frames = max(1, math.ceil(speech.shape[0] / spf))
        starts = plan_chunks(n_frames, cfg.frames, p)
        total = starts[-1] + cfg.frames
        video = np.zeros((total, cfg.image_size, cfg.image_size, 3), np.uint8)
        audio = _pad(speech if speech is not None else np.zeros(0, np.float32), total * spf)
        for k, start in enumerate(starts):
            t0 = time.perf_counter()
            window = slice(start * spf, (start + cfg.frames) * spf)
            prefix = video[start : start + p] if k > 0 and p > 0 else None
            if k == 0 and first is not None:  # sampled on the first sentences (which the speech starts with), handed out
                video[: cfg.frames] = first[0]
                continue
            frames, sampled = self._sample_chunk(guidance, audio[window] if speech is not None else None, prefix, seed + k)
            new = 0 if prefix is None else p
            video[start + new : start + cfg.frames] = frames[new:]  # frames[:new] are the prefix itself
            if speech is None:
                audio[(start + new) * spf : window.stop] = sampled[new * spf :]
            timings["sampling"] = timings.get("sampling", 0.0) + time.perf_counter() - t0
            stop = min(start + cfg.frames, n_frames)
            yield video[start + new : stop].copy(), audio[(start + new) * spf : stop * spf].copy(), k == len(starts) - 1, n_frames

    def _autoguidance(self, speech: np.ndarray | None) -> float:
        """The autoguidance weight this clip's audio was sampled with (1: none)."""
        if speech is not None or self.audio_guide is None:
            return 1.0
        return self.settings.audio_guidance

    # -- head motion, clean-up, lip sync and style images -----------------------------------------
    def _move(self, video: np.ndarray, call: TalkingHeadCall) -> np.ndarray:
        """The call's head motion (``model/motion.py``) over these frames, its clock running on from the
        call's previous utterance."""
        from model.motion import HeadMotion, apply_pose

        start, call.video_seconds = call.video_seconds, call.video_seconds + len(video) / VIDEO_FPS
        return apply_pose(video, HeadMotion.for_call(call.call_id).pose(start + np.arange(len(video)) / VIDEO_FPS))

    def _animate_still(self, request: Request, caption: int, speech, timings, face: Face | None = None):
        """The style image driven by the speech (or by audio the joint model sampled): ``(frames,
        audio, last)`` pieces of one chunk's stride each."""
        if self.lipsync is None:
            raise GenerationError("this receiver has no lip-sync model loaded, so it cannot animate a style image")
        image = face.image if face is not None and face.source == "style" else self._style_face(request.style_image)
        if speech is None:  # the paper: audio generated from noise by the joint model drives the image
            t0 = time.perf_counter()
            _, audio = self._sample_chunks(caption, request.seed)
            timings["sampling"] = time.perf_counter() - t0
        else:
            audio = speech
        spf = AUDIO_RATE // VIDEO_FPS
        n = max(1, math.ceil(len(audio) / spf))
        audio = _pad(audio, n * spf)
        lips = self.lipsync.stream(audio, n, VIDEO_FPS, still=image)
        step = self.config.unet.frames - self.settings.prefix_frames
        for start in range(0, n, step):
            stop = min(n, start + step)
            t0 = time.perf_counter()
            video = lips.push(np.broadcast_to(image, (stop - start, *image.shape)))
            timings["lipsync"] = timings.get("lipsync", 0.0) + time.perf_counter() - t0
            yield video, audio[start * spf : stop * spf], stop == n

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
    def draw_face(self, gender: str, seed: int) -> tuple[np.ndarray, str]:
        """One face of ``gender`` for a new call: uint8 ``[S, S, 3]`` and what drew it.

        The portrait model when loaded (``settings.face_sampler`` with ``face_steps`` steps), else the
        joint model itself: one caption-only chunk with the clip sampler at ``face_steps`` steps (at
        most 5x the clip's), cleaned like any chunk, and its middle frame.
        """
        caption = GENDER_CAPTIONS[gender]
        if self.portrait is not None:
            with self._autocast():
                face = self.portrait.sample(caption, seed=seed, sampler=self.settings.face_sampler,
                                            steps=self.settings.face_steps, cfg_scale=self.settings.face_cfg)
            return face[0], "portrait"
        steps = min(self.settings.face_steps, 5 * self.settings.steps)
        frames, _ = self._sample_chunk(self._guidance(self.caption_index(caption)), None, None, seed, steps=steps)
        if self.settings.postfilter:
            from model.postfilter import postfilter

            frames = postfilter(frames)
        return frames[len(frames) // 2].copy(), "joint"


class _Speaking:
    """One utterance's speech as the voice makes it, sentence by sentence: ``first`` (the first
    sentences, at least ``need`` samples when there are that many) at once, enough for the first
    chunk; ``whole()`` says the rest, after that chunk is out. Joined, the pieces are what
    ``voice.synthesize(text)`` returns (the engines' ``stream``). On a CPU the rest is made after
    the first chunk rather than beside it: the two would only share the same cores, and the first
    frame is what a caller waits for."""

    def __init__(self, voice, text: str, speaker: str, need: int, max_seconds: float) -> None:
        from model.speech.voice import speak_stream

        self.voice, self.max_seconds = voice, max_seconds
        self._pieces = speak_stream(voice, text, speaker)
        head: list[np.ndarray] = []
        self.complete = False
        while sum(len(a) for a in head) < need:
            piece = next(self._pieces, None)
            if piece is None:
                self.complete = True
                break
            head.append(self._check(piece))
        self.first = np.concatenate(head) if head else np.zeros(0, np.float32)
        self._check_length(len(self.first))
        self._whole: np.ndarray | None = self.first if self.complete else None

    @property
    def empty(self) -> bool:
        return self.complete and self.first.size == 0

    def _check(self, piece) -> np.ndarray:
        if piece.sample_rate != AUDIO_RATE:
            raise RuntimeError(f"voice {self.voice.name} returned {piece.sample_rate} Hz, expected {AUDIO_RATE}")
        return np.asarray(piece.audio, dtype=np.float32)

    def _check_length(self, samples: int) -> None:
        if samples / AUDIO_RATE > self.max_seconds:
            raise GenerationError(
                f"the text makes over {samples / AUDIO_RATE:.0f} s of speech, more than this receiver's limit of "
                f"{self.max_seconds:.0f} s per utterance; send it in parts")

    def whole(self, timings: dict | None = None) -> np.ndarray:
        """All of the speech (float32 [S]): the rest is said now, the first time this is asked."""
        if self._whole is None:
            t0 = time.perf_counter()
            parts, total = [self.first], len(self.first)
            for piece in self._pieces:
                parts.append(self._check(piece))
                total += len(parts[-1])
                self._check_length(total)  # stop early: speech that will be refused is not made
            self._whole, self.complete = np.concatenate(parts), True
            if timings is not None:
                timings["voice"] = timings.get("voice", 0.0) + time.perf_counter() - t0
        return self._whole


class _Cleanup:
    """The clean-up before lip sync (``settings.postfilter``, not in the paper), chunk by chunk. With
    the call's face and a restorer: a Gaussian over time (the flicker), then the restorer gives back
    the face's detail (``model/restore``); otherwise non-local means, then the Gaussian over time
    (``model/postfilter.py``). Both look ahead in time, so they run as ``Windowed`` filters."""

    def __init__(self, head: TalkingHead, reference: np.ndarray | None, timings: dict) -> None:
        from model.postfilter import TEMPORAL, WINDOW, Windowed, postfilter, smooth_in_time

        self.head, self.reference, self.timings = head, reference, timings
        reach = math.ceil(2 * TEMPORAL)
        self.restores = reference is not None and head.restorer is not None
        if self.restores:
            self.label, self.filter = "restore", Windowed(lambda v: smooth_in_time(v, TEMPORAL), reach)
        else:
            self.label, self.filter = "postfilter", Windowed(postfilter, WINDOW // 2 + reach)

    def push(self, frames: np.ndarray, last: bool) -> np.ndarray:
        t0 = time.perf_counter()
        ready = self.filter.push(frames)
        if last:
            ready = np.concatenate([ready, self.filter.finish()])
        if self.restores and len(ready):
            with self.head._autocast():
                ready = self.head.restorer.restore(ready, self.reference)
        self.timings[self.label] = self.timings.get(self.label, 0.0) + time.perf_counter() - t0
        return ready


class TalkingHeadCall(Call):
    """A call on a ``TalkingHead``: one face for all its utterances (``model/call.py`` says when it changes)."""

    def __init__(self, head: TalkingHead, call_id: str, *, store: str | Path | None = None) -> None:
        super().__init__(call_id, store=store, lock=head._lock)
        self.head = head
        self.video_seconds = 0.0  # of video rendered in this call so far: the head motion's clock

    def caption_index(self, caption: str) -> int:
        return self.head.caption_index(caption)

    def style_face(self, path: Path) -> np.ndarray:
        if self.head.lipsync is None:  # the utterance that brings it animates the still (IV-E)
            raise GenerationError("this receiver has no lip-sync model loaded, so it cannot animate a style image")
        return self.head._style_face(path)

    def draw_face(self, gender: str, seed: int, number: int) -> Face:
        t0 = time.perf_counter()
        image, source = self.head.draw_face(gender, seed)
        logger.info("call %s: drew a %s face with the %s model in %.1f s", self.call_id, gender, source, time.perf_counter() - t0)
        return Face(image, source, gender, GENDER_CAPTIONS[gender], seed, number)

    def _face_for(self, request: Request) -> Face | None:
        if not self.head.uses_reference:
            return None  # the paper's path (or a joint model without a reference input): every chunk invents its face
        return super()._face_for(request)

    def render(self, request: Request, face: Face | None, caption_index: int) -> Iterator[Chunk]:
        return self.head._render(request, face, caption_index, self)


def _gender(caption: str) -> str | None:
    from model.speech.voice import gender_of_caption

    return gender_of_caption(caption)


def _pad(audio: np.ndarray, samples: int) -> np.ndarray:
    out = np.zeros(samples, np.float32)
    n = min(samples, audio.shape[0])
    out[:n] = audio[:n]
    return out
