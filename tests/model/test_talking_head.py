"""The receiver's real generator on tiny models: chunking, continuity, every input combination."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.clip import Clip, Request
from model.diffusion.config import preset
from model.speech.voice import SpeakerInfo, Speech
from model.talking_head import GenerationError, TalkingHead, TalkingHeadSettings, plan_chunks


class SecondsVoice:
    """A test voice: the text is a number of seconds; the audio is a tone of that length."""

    name = "seconds"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def speakers(self) -> list[SpeakerInfo]:
        return [SpeakerInfo("f1", "female"), SpeakerInfo("f2", "female"), SpeakerInfo("m1", "male")]

    def synthesize(self, text: str, *, speaker: str | None = None) -> Speech:
        self.calls.append((text, speaker))
        n = round(float(text) * 16_000)
        t = np.arange(n) / 16_000
        audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        return Speech(audio=audio, sample_rate=16_000)


class MouthLipSync:
    """A test lip-sync network: darkens the lower half of each frame by the frame's audio energy."""

    def __init__(self) -> None:
        self.refined = 0
        self.animated = 0
        self.sizes: list[tuple[int, int | None]] = []  # (side of the frames driven, box_size) per stream

    def refine(self, frames: np.ndarray, audio: np.ndarray, fps: int = 16, *, box_size: int | None = None) -> np.ndarray:
        self.refined += 1
        self.sizes.append((frames.shape[1], box_size))
        return self._drive(frames.copy(), audio, fps)

    def animate(self, image: np.ndarray, audio: np.ndarray, fps: int = 16) -> np.ndarray:
        self.animated += 1
        n = max(1, int(np.ceil(audio.size / 16_000 * fps)))
        return self._drive(np.repeat(image[None], n, axis=0), audio, fps)

    def stream(self, audio: np.ndarray, n_frames: int, fps: int = 16, *, still: np.ndarray | None = None,
               box_size: int | None = None):
        """Chunk by chunk, as ``LipSync.stream``: the same frames as ``refine``/``animate`` on the whole."""
        if still is not None:
            self.sizes.append((still.shape[0], box_size))
        if still is None:
            self.refined += 1
        else:
            self.animated += 1
        fake = self

        class Stream:
            def __init__(self) -> None:
                self.audio, self.n_frames, self.done = audio, n_frames, 0

            def extend(self, more: np.ndarray, n: int | None = None) -> None:
                self.audio, self.n_frames = more, n

            def push(self, frames: np.ndarray) -> np.ndarray:
                if still is None and self.done == 0:
                    fake.sizes.append((frames.shape[1], box_size))
                out = fake._drive(np.array(frames), self.audio, fps, first=self.done)
                self.done += len(frames)
                return out

        return Stream()

    def growing(self, audio: np.ndarray, fps: int = 16, *, box_size: int | None = None):
        return self.stream(audio, None, fps, box_size=box_size)

    @staticmethod
    def _drive(frames: np.ndarray, audio: np.ndarray, fps: int, first: int = 0) -> np.ndarray:
        spf = 16_000 // fps
        for k in range(frames.shape[0]):
            i = first + k
            energy = float(np.abs(audio[i * spf : (i + 1) * spf]).mean()) if audio.size > i * spf else 0.0
            h = frames.shape[1]
            frames[k, h // 2 :] = (frames[k, h // 2 :] * (1 - min(energy, 0.5))).astype(np.uint8)
        return frames


class StaticFaceModel(torch.nn.Module):
    """A deterministic tiny "network" for the tiny preset's shapes: it believes clips are a still
    face with a small mouth movement, so its x0 for every frame is the clip's first frame plus a
    fixed per-frame offset, and its audio x0 is silence. eps follows from x0 and the schedule.
    Sampling with it is cheap and repeatable; the "face" a chunk settles on is a pattern drawn
    from its starting noise, so only the prefix conditioning can tie a chunk to the one before."""

    def __init__(self, config) -> None:
        super().__init__()
        from model.diffusion.schedule import linear_schedule

        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device
        self.register_buffer("alpha_bar", linear_schedule(config.schedule).alphas_cumprod.float())
        frames = config.unet.frames
        mouth = 0.1 * torch.sin(torch.arange(frames, dtype=torch.float32) * 2.0)
        self.register_buffer("mouth", mouth - mouth.mean())  # per-frame offsets that average to zero

    def forward(self, x, t, caption):
        from model.diffusion.av import AV

        ab = self.alpha_bar[t].reshape(-1, 1, 1, 1, 1)
        x0 = (x.video[:, :1] / ab.sqrt()).clamp(-1, 1)  # [B, 1, C, H, W]
        x0 = (x0 + self.mouth.reshape(1, -1, 1, 1, 1) + self.anchor).clamp(-1, 1)
        eps_video = (x.video - ab.sqrt() * x0) / (1 - ab).sqrt()
        eps_audio = x.audio / (1 - self.alpha_bar[t].reshape(-1, 1, 1)).sqrt()
        return AV(eps_video, eps_audio)


@pytest.fixture(scope="module")
def toy_model():
    config = preset("tiny")
    return StaticFaceModel(config), config


def make(toy_model, **settings) -> tuple[TalkingHead, SecondsVoice, MouthLipSync]:
    model, config = toy_model
    voice, lipsync = SecondsVoice(), MouthLipSync()
    # postfilter off: these tests look at the sampled frames themselves (test_postfilter_* turn it on)
    defaults = {"sampler": "ddim", "steps": 4, "prefix_frames": 1, "unconditional_seconds": 0.5, "postfilter": False}
    head = TalkingHead(model, config, voice=voice, lipsync=lipsync, settings=TalkingHeadSettings(**{**defaults, **settings}))
    return head, voice, lipsync


def test_plan_chunks_covers_every_frame_once_past_the_prefix() -> None:
    assert plan_chunks(1, 16, 4) == [0]
    assert plan_chunks(16, 16, 4) == [0]
    assert plan_chunks(17, 16, 4) == [0, 12]
    assert plan_chunks(40, 16, 4) == [0, 12, 24]
    for n in range(1, 80):
        starts = plan_chunks(n, 16, 4)
        assert starts[-1] + 16 >= n and (len(starts) == 1 or starts[-2] + 16 < n)
    with pytest.raises(ValueError):
        plan_chunks(10, 16, 16)


@pytest.mark.parametrize("seconds", [0.3, 1.0, 7.5])
def test_speech_of_any_length_makes_one_clip_of_its_length(toy_model, seconds) -> None:
    head, _, lipsync = make(toy_model)
    clip = head.generate(Request(caption="A woman is talking", text=str(seconds), seed=3))
    assert isinstance(clip, Clip)
    assert clip.video.shape[0] == int(np.ceil(seconds * 16))
    assert clip.audio.shape[0] == clip.video.shape[0] * 1000
    n = round(seconds * 16_000)
    assert np.allclose(clip.audio[:n], head.voice.synthesize(str(seconds)).audio)  # the whole TTS waveform
    assert lipsync.refined == 1
    assert set(clip.info["timings"]) >= {"voice", "sampling", "lipsync"}


def test_chunk_boundaries_continue_the_face(toy_model) -> None:
    """With the prefix, the frame after a chunk boundary differs from the one before no more than
    frames within a chunk do; without it, chunks are drawn independently and the face jumps."""

    def steps(prefix: int) -> tuple[float, float]:
        head, _, _ = make(toy_model, prefix_frames=prefix, lipsync=False)
        head.lipsync = None
        video = head.generate(Request(text="4.0", seed=11)).video.astype(np.float32)
        change = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))  # change[i - 1]: frame i-1 -> i
        frames = head.config.unet.frames
        firsts = set(range(frames, len(video), frames - prefix))  # first new frame of chunks 1, 2, ...
        boundary = [change[i - 1] for i in sorted(firsts)]
        within = [change[i - 1] for i in range(1, len(video)) if i not in firsts]
        return max(boundary), max(within)

    with_prefix, within = steps(2)
    without_prefix, _ = steps(0)
    assert with_prefix <= within
    assert without_prefix > 3 * within


@pytest.mark.parametrize(
    "request_",
    [
        Request(),
        Request(caption="A man is talking"),
        Request(text="0.5"),
        Request(caption="A woman is talking", text="1.2"),
    ],
    ids=lambda r: r.mode,
)
def test_every_input_combination_makes_a_clip(toy_model, request_) -> None:
    head, _, _ = make(toy_model)
    clip = head.generate(request_)
    assert clip.video.dtype == np.uint8 and clip.video.shape[1:] == (16, 16, 3)
    assert clip.audio.dtype == np.float32 and abs(clip.audio.shape[0] / 16_000 - clip.seconds) < 1e-6
    if not request_.text:
        assert clip.seconds == pytest.approx(0.5)


@pytest.mark.parametrize("text", ["", "1.0"])
@pytest.mark.parametrize("caption", ["", "A woman is talking"])
def test_style_image_is_animated_with_speech_or_generated_audio(toy_model, tmp_path, text, caption) -> None:
    import cv2

    image = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)  # small, textured: taken whole
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), image)
    head, _, lipsync = make(toy_model)
    clip = head.generate(Request(caption=caption, text=text, style_image=path))
    assert lipsync.animated == 1
    assert clip.video.shape[1:] == (16, 16, 3)  # framed at the model's size, like every other clip
    assert clip.seconds == pytest.approx(1.0 if text else 0.5)


def test_voice_is_chosen_by_caption_gender_and_kept_for_the_session(toy_model) -> None:
    head, voice, _ = make(toy_model)
    for seq in range(3):
        head.generate(Request(caption="A woman is talking", text="0.2", seed=seq, session="alice"))
    head.generate(Request(caption="A man is talking", text="0.2", session="alice"))
    speakers = [speaker for _, speaker in voice.calls]
    assert len(set(speakers[:3])) == 1 and speakers[0] in {"f1", "f2"}
    assert speakers[3] == "m1"


def test_bad_requests_get_clear_errors(toy_model, tmp_path) -> None:
    import cv2

    head, _, _ = make(toy_model, max_speech_seconds=2.0)
    clip = head.generate(Request(caption="A dragon is singing"))  # a caption never fails: noted, then drawn without it
    assert clip.info["caption"]["unknown"] == ["dragon", "singing"] and clip.info["caption_index"] == 0
    with pytest.raises(GenerationError, match="limit"):
        head.generate(Request(text="3.0"))
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(GenerationError, match="style image x.png"):
        head.generate(Request(style_image=bad))
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((200, 200, 3), 90, np.uint8))
    with pytest.raises(GenerationError, match="no face"):
        head.generate(Request(style_image=flat))
    head.lipsync = None
    with pytest.raises(GenerationError, match="lip-sync"):
        head.generate(Request(style_image=bad))


class CountingGuide(torch.nn.Module):
    """A weaker network for autoguidance that counts its calls (it believes the audio is a tone)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x, t, caption):
        self.calls += 1
        eps = self.model(x, t, caption)
        return type(eps)(eps.video, eps.audio - 0.2)


def test_audio_autoguidance_applies_only_to_audio_from_noise(toy_model) -> None:
    head, _, _ = make(toy_model)
    plain = head.generate(Request(caption="A man is talking", seed=3))
    guide = CountingGuide(toy_model[0])
    guided_head = TalkingHead(toy_model[0], toy_model[1], voice=head.voice, lipsync=head.lipsync,
                              audio_guide=guide, settings=head.settings)
    guided = guided_head.generate(Request(caption="A man is talking", seed=3))
    assert guide.calls > 0 and guided.info["audio_autoguidance"] == 3.0 and plain.info["audio_autoguidance"] == 1.0
    assert not np.allclose(guided.audio, plain.audio)
    calls = guide.calls
    spoken = guided_head.generate(Request(text="0.5", seed=3))
    assert guide.calls == calls and spoken.info["audio_autoguidance"] == 1.0  # the TTS audio replaces it
    off = TalkingHead(toy_model[0], toy_model[1], voice=head.voice, lipsync=head.lipsync, audio_guide=guide,
                      settings=TalkingHeadSettings(**{**head.settings.__dict__, "audio_guidance": 1.0}))
    assert np.array_equal(off.generate(Request(caption="A man is talking", seed=3)).audio, plain.audio)
    assert guide.calls == calls


def test_postfilter_cleans_sampled_frames_only(toy_model, tmp_path) -> None:
    """On by default; it runs between sampling and lip sync, is timed and recorded, and a style
    image (clean already) is not filtered."""
    assert TalkingHeadSettings().postfilter
    head, _, _ = make(toy_model, postfilter=True)
    raw, _, _ = make(toy_model)
    clip, plain = head.generate(Request(text="0.5", seed=5)), raw.generate(Request(text="0.5", seed=5))
    assert clip.info["postfilter"] and "postfilter" in clip.info["timings"]
    assert not plain.info["postfilter"] and "postfilter" not in plain.info["timings"]
    assert clip.video.shape == plain.video.shape and not np.array_equal(clip.video, plain.video)
    face = tmp_path / "face.png"
    import cv2

    cv2.imwrite(str(face), np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8))
    still = head.generate(Request(text="0.5", style_image=face))
    assert not still.info["postfilter"] and "postfilter" not in still.info["timings"]


def test_autoguide_must_denoise_the_same_x_t() -> None:
    import dataclasses

    from model.diffusion.config import check_autoguide, classifier_preset

    tiny = preset("tiny")
    check_autoguide(tiny, tiny)
    with pytest.raises(ValueError, match="audio_scale"):
        check_autoguide(tiny, dataclasses.replace(tiny, audio_scale=4.0))
    with pytest.raises(ValueError, match="classifier"):
        check_autoguide(tiny, classifier_preset("tiny"))


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        TalkingHeadSettings(sampler="euler")
    with pytest.raises(ValueError):
        TalkingHeadSettings(steps=0)
    with pytest.raises(ValueError, match="audio_guidance"):
        TalkingHeadSettings(audio_guidance=-1.0)
    with pytest.raises(ValueError, match="audio_contrast"):
        TalkingHeadSettings(audio_contrast=-0.1)


def test_a_joint_model_that_reads_descriptions_gets_what_the_caption_said(monkeypatch) -> None:
    """A description-conditioned joint model (free-form captions) is given the reading's whole
    description; a caption-index one its gender's caption (``reading_condition``)."""
    import dataclasses

    from model.describe.attributes import SLOTS
    from model.diffusion import generate
    from model.diffusion.unet import AVUNet

    base = preset("tiny")
    config = dataclasses.replace(base, unet=dataclasses.replace(base.unet, attribute_slots=SLOTS))
    built = []
    build = generate.build_guidance

    def recording(*args, **kwargs):
        built.append(kwargs.get("caption"))
        return build(*args, **kwargs)

    monkeypatch.setattr(generate, "build_guidance", recording)
    torch.manual_seed(0)
    head = TalkingHead(AVUNet(config.unet).eval(), config, voice=SecondsVoice(), lipsync=None,
                       settings=TalkingHeadSettings(sampler="ddim", steps=2, prefix_frames=1, unconditional_seconds=0.5,
                                                    postfilter=False, lipsync=False))
    clip = head.generate(Request(caption="A woman is talking", text="0.3"))
    assert built[-1] == {"gender": "female"} and clip.info["caption_condition"] == {"gender": "female"}
    clip = head.generate(Request(caption="", text="0.3", session="other"))
    assert built[-1] == {} and clip.info["caption_condition"] == {}
    index_head, _, _ = make((StaticFaceModel(base), base))
    assert index_head.reading_condition(index_head.read_caption("A woman is talking")) == 2
