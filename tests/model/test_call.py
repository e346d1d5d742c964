"""One face per call (model/call.py) on the real generator with tiny stand-in models."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from model.call import Face, FaceStore, default_gender
from model.clip import Request
from model.diffusion.av import AV
from model.diffusion.config import preset
from model.pipeline import draw_portrait
from model.talking_head import GenerationError, TalkingHead, TalkingHeadSettings
from tests.model.test_talking_head import MouthLipSync, SecondsVoice


class CopyFaceModel(torch.nn.Module):
    """A stand-in joint network with a reference input: its x0 for every frame is the reference
    (when given) or a flat grey (when not), so a sample shows whatever face it was handed."""

    def __init__(self, config) -> None:
        super().__init__()
        from model.diffusion.schedule import linear_schedule

        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.register_buffer("alpha_bar", linear_schedule(config.schedule).alphas_cumprod.float())
        self.references = 0

    def forward(self, x, t, caption, reference=None):
        ab = self.alpha_bar[t].reshape(-1, 1, 1, 1, 1)
        if reference is None:
            x0 = torch.zeros_like(x.video) + self.anchor
        else:
            self.references += 1
            x0 = reference[:, None].expand_as(x.video) + self.anchor
        eps_video = (x.video - ab.sqrt() * x0) / (1 - ab).sqrt()
        eps_audio = x.audio / (1 - self.alpha_bar[t].reshape(-1, 1, 1)).sqrt()
        return AV(eps_video, eps_audio)


class FakePortrait:
    """A portrait model stand-in: a flat face whose colour encodes the caption and the seed."""

    def __init__(self, size: int) -> None:
        self.config = type("C", (), {"image_size": size, "describes": False})()
        self.drawn: list[tuple[str, int]] = []

    def sample(self, caption, *, seed=0, steps=50, count=1, sampler="dpm++", cfg_scale=1.0):
        self.drawn.append((caption, seed))
        rng = np.random.default_rng(seed)
        colour = rng.integers(30, 220, size=3)
        if "woman" in caption:
            colour[0] = 250
        face = np.broadcast_to(colour.astype(np.uint8), (count, self.config.image_size, self.config.image_size, 3))
        return np.ascontiguousarray(face)


@pytest.fixture()
def head():
    config = preset("tiny-ref")
    # head motion off: these tests compare frames with the face pixel for pixel (tests/model/test_motion.py moves it)
    settings = TalkingHeadSettings(sampler="ddim", steps=3, prefix_frames=1, unconditional_seconds=0.5, postfilter=False,
                                   head_motion=False)
    return TalkingHead(CopyFaceModel(config), config, voice=SecondsVoice(), lipsync=MouthLipSync(),
                       portrait=FakePortrait(config.unet.image_size), settings=settings)


def _upper(video: np.ndarray) -> np.ndarray:
    """The upper half of every frame (the lip-sync stand-in darkens the lower half)."""
    return video[:, : video.shape[1] // 2].astype(np.float32)


def test_every_utterance_of_a_call_shows_its_face(head) -> None:
    call = head.open_call("alice")
    clips = [call.say(Request(caption="A woman is talking", text="0.5", seed=1)),
             call.say(Request(text="0.4", seed=2)),
             call.say(Request(caption="A woman is talking", seed=3)),
             call.say(Request(seed=4))]
    face = call.face
    assert face is not None and face.gender == "female" and face.source == "portrait" and face.number == 1
    for clip in clips:
        assert np.abs(_upper(clip.video) - face.image[: face.image.shape[0] // 2]).max() <= 2
        assert clip.info["face"]["number"] == 1 and clip.info["reference"]
    assert "face" in clips[0].info["timings"] and "face" not in clips[1].info["timings"]
    assert len(head.portrait.drawn) == 1


def test_a_caption_of_the_other_gender_changes_the_face_and_the_voice(head) -> None:
    call = head.open_call("bob")
    call.say(Request(caption="A man is talking", text="0.3"))
    first = call.face
    call.say(Request(caption="A man is talking", text="0.3"))
    assert call.face is first
    call.say(Request(caption="A woman is talking", text="0.3"))
    assert call.face.gender == "female" and call.face.number == 2
    assert not np.array_equal(call.face.image, first.image)
    speakers = [speaker for _, speaker in head.voice.calls]
    assert speakers[0] == speakers[1] == "m1" and speakers[2].startswith("f")


class KeywordReader:
    """A caption encoder stand-in: a few attribute words, everything else unknown."""

    WORDS = {"man": ("gender", "male"), "woman": ("gender", "female"), "red": ("hair", "red"), "grey": ("hair", "grey"),
             "glasses": ("glasses", "yes")}

    def read(self, caption):
        words = caption.lower().replace(".", "").split()
        said = dict(self.WORDS[w] for w in words if w in self.WORDS)
        unknown = tuple(w for w in words if w not in self.WORDS and w not in ("a", "with", "and", "is", "talking", "hair"))
        return type("R", (), {"said": lambda self: said, "unknown": unknown})()


class DescribingPortrait(FakePortrait):
    """A description model stand-in: records the description vector it was asked for."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.config.describes = True

    def sample(self, caption, **kwargs):
        from model.describe.attributes import description_of, said, text_of

        return super().sample(text_of(said(description_of(caption))), **kwargs)


def test_a_call_face_follows_what_captions_say_of_the_person(head) -> None:
    head.captions = KeywordReader()
    head.portrait = DescribingPortrait(head.config.unet.image_size)
    call = head.open_call("described")
    first = call.say(Request(caption="A woman with red hair is talking", text="0.3"))
    assert call.face.description == {"gender": "female", "hair": "red"} and head.portrait.drawn[-1][0] == "a woman with red hair"
    assert first.info["caption"] == {"text": "A woman with red hair is talking", "read": {"gender": "female", "hair": "red"},
                                     "unknown": []}
    face = call.face
    for caption in ("A woman is talking", "red hair", ""):  # says nothing new: the same person
        call.say(Request(caption=caption, text="0.3"))
        assert call.face is face
    call.say(Request(caption="glasses", text="0.3"))  # more of the same person: drawn from both
    assert call.face.number == 2 and call.face.description == {"gender": "female", "hair": "red", "glasses": "yes"}
    call.say(Request(caption="A man with grey hair", text="0.3"))  # another person: only what this caption says
    assert call.face.number == 3 and call.face.description == {"gender": "male", "hair": "grey"}
    odd = call.say(Request(caption="A man with a purple dragon", text="0.3"))
    assert odd.info["caption"]["unknown"] == ["purple", "dragon"] and call.face.number == 3


def test_no_caption_draws_a_person_of_the_calls_own_gender(head) -> None:
    call = head.open_call("nobody-said")
    call.say(Request(text="0.3"))
    assert call.face.gender == default_gender("nobody-said")


def test_a_style_image_becomes_the_face_and_later_utterances_copy_it(head, tmp_path) -> None:
    path = draw_portrait(tmp_path / "anna.png", gender="female", seed=3)
    call = head.open_call("carol")
    call.say(Request(caption="A man is talking", text="0.3"))
    styled = call.say(Request(text="0.3", style_image=path))
    assert call.face.source == "style" and call.face.detail == "anna.png" and call.face.number == 2
    assert head.lipsync.animated == 1 and not styled.info["reference"]  # the paper's IV-E for that utterance
    later = call.say(Request(text="0.4"))
    assert later.info["reference"] and later.info["face"]["source"] == "style"
    assert np.abs(_upper(later.video) - call.face.image[: call.face.image.shape[0] // 2]).mean() < 2


class SureJudge:
    """A gender judge stand-in: says ``gender`` of every picture with probability ``sure``."""

    def __init__(self, gender: str, sure: float) -> None:
        self.p = np.array([sure, 1 - sure] if gender == "male" else [1 - sure, sure], np.float32)
        self.seen = 0

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        self.seen += len(frames)
        return np.tile(self.p, (len(frames), 1))


def test_a_style_picture_nothing_names_speaks_in_the_voice_the_judge_sees(head, tmp_path) -> None:
    path = draw_portrait(tmp_path / "anna.png", gender="female", seed=3)
    head.gender_judge = SureJudge("female", 0.97)
    clip = head.open_call("no-caption").say(Request(text="0.3", style_image=path))
    assert head.voice.calls[-1][1].startswith("f")
    assert clip.info["speaker_gender"] == {"gender": "female", "from": "picture"}
    assert clip.info["face"]["gender"] is None  # the picture's gender is the voice's guess, not the face's
    # a caption still says it: it wins over what the judge sees
    said = head.open_call("said").say(Request(caption="A man is talking", text="0.3", style_image=path))
    assert head.voice.calls[-1][1] == "m1" and said.info["speaker_gender"] == {"gender": "male", "from": "face"}


def test_an_unsure_judge_leaves_the_voice_to_the_call(head, tmp_path) -> None:
    path = draw_portrait(tmp_path / "anna.png", gender="female", seed=3)
    head.gender_judge = SureJudge("male", 0.6)
    clip = head.open_call("unsure").say(Request(text="0.3", style_image=path))
    assert head.gender_judge.seen == 1 and clip.info["speaker_gender"] == {"gender": None, "from": None}


def test_the_shipped_gender_judge_tells_the_demo_gallerys_people_apart(tmp_path) -> None:
    """The shipped judge on procedural portraits (the demo gallery's kind), framed as a style face is."""
    from model.evaluation.gender import GenderClassifier
    from model.lipsync.style import read_image, style_frame
    from model.talking_head import PICTURE_SURE, WEIGHTS_DIR

    judge = GenderClassifier.load(WEIGHTS_DIR / "gender")
    for gender in ("male", "female"):
        for seed in range(4, 8):
            face = style_frame(read_image(draw_portrait(tmp_path / f"{gender}{seed}.png", gender=gender, seed=seed)), 64)
            p = judge.probabilities(face[None])[0]
            assert p[("male", "female").index(gender)] >= PICTURE_SURE, (gender, seed, p)


def test_bad_input_fails_the_utterance_and_keeps_the_face(head, tmp_path) -> None:
    call = head.open_call("dave")
    call.say(Request(caption="A woman is talking", text="0.3"))
    before = call.face
    # a caption never fails an utterance: what the reader does not know is passed over and noted
    odd = call.say(Request(caption="A purple dragon is talking", text="0.3"))
    assert odd.info["caption"] == {"text": "A purple dragon is talking", "read": {}, "unknown": ["purple", "dragon"]}
    assert call.face is before
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((200, 200, 3), 90, np.uint8))
    with pytest.raises(GenerationError, match="no face"):
        call.say(Request(text="0.3", style_image=flat))
    assert call.face is before
    after = call.say(Request(text="0.3"))
    assert after.info["face"]["number"] == 1


def test_the_face_survives_a_new_call_object_on_the_same_store(head, tmp_path) -> None:
    store = tmp_path / "calls" / "erin"
    head.open_call("erin", store=store).say(Request(caption="A man is talking", text="0.3"))
    assert (store / "face.png").is_file() and (store / "face.json").is_file()
    drawn = len(head.portrait.drawn)
    again = head.open_call("erin", store=store)  # a reconnect, or a receiver restart
    clip = again.say(Request(text="0.3"))
    assert len(head.portrait.drawn) == drawn and again.faces_made == 0
    assert clip.info["face"]["gender"] == "male"
    saved = FaceStore(store).load()
    assert np.array_equal(saved.image, again.face.image)


def test_an_unreadable_store_starts_a_new_face(tmp_path) -> None:
    store = tmp_path / "s"
    store.mkdir()
    (store / "face.png").write_bytes(b"not a png")
    (store / "face.json").write_text("{}")
    assert FaceStore(store).load() is None


def test_the_papers_path_keeps_no_face(head) -> None:
    paper = TalkingHead(head.diffusion, head.config, voice=SecondsVoice(), lipsync=MouthLipSync(), portrait=head.portrait,
                        settings=dataclasses.replace(head.settings, face="paper"))
    clip = paper.open_call("frank").say(Request(caption="A woman is talking", text="0.3"))
    assert "face" not in clip.info and not clip.info["reference"]
    assert head.diffusion.references == 0 and not head.portrait.drawn


def test_without_a_portrait_model_the_joint_model_draws_the_face(head) -> None:
    head.portrait = None
    call = head.open_call("gail")
    call.say(Request(caption="A man is talking", text="0.3"))
    assert call.face.source == "joint" and call.face.image.shape == (16, 16, 3)


def test_a_face_must_be_an_image() -> None:
    with pytest.raises(ValueError):
        Face(np.zeros((4, 4), np.uint8), "stub", None)
    with pytest.raises(ValueError):
        Face(np.zeros((4, 4, 3), np.uint8), "stub", "robot")


def test_generate_keeps_one_face_per_session(head) -> None:
    a = head.generate(Request(caption="A woman is talking", text="0.3", session="s1"))
    b = head.generate(Request(text="0.3", session="s1"))
    c = head.generate(Request(caption="A woman is talking", text="0.3", session="s2"))
    assert a.info["face"] == b.info["face"] and c.info["face"]["seed"] != a.info["face"]["seed"]


class MarkingRestorer:
    """A restorer stand-in: sets the top-left pixel of every frame to the reference's, and counts."""

    def __init__(self) -> None:
        self.calls = 0  # of restore (once per streamed piece)
        self.frames = 0

    def restore(self, frames, reference):
        self.calls += 1
        self.frames += len(frames)
        out = frames.copy()
        out[:, 0, 0] = reference[0, 0]
        return out


def test_the_restorer_cleans_frames_that_copy_a_face_and_nothing_else(head, tmp_path) -> None:
    head.restorer = MarkingRestorer()
    head.settings = dataclasses.replace(head.settings, postfilter=True)
    call = head.open_call("hana")
    clip = call.say(Request(caption="A woman is talking", text="0.3"))
    assert head.restorer.frames == len(clip.video) and clip.info["restored"] and "restore" in clip.info["timings"]
    assert (clip.video[:, 0, 0] == call.face.image[0, 0]).all()
    calls = head.restorer.calls
    paper = TalkingHead(head.diffusion, head.config, voice=SecondsVoice(), lipsync=MouthLipSync(),
                        settings=dataclasses.replace(head.settings, face="paper"), restorer=head.restorer)
    plain = paper.generate(Request(caption="A woman is talking", text="0.3"))
    assert head.restorer.calls == calls and not plain.info["restored"] and "postfilter" in plain.info["timings"]


def test_a_ddpm_sampler_with_fewer_steps_than_the_schedule_is_refused_at_start() -> None:
    config = preset("tiny-ref")
    with pytest.raises(ValueError, match=f"all {config.schedule.timesteps} steps"):
        TalkingHead(CopyFaceModel(config), config, voice=SecondsVoice(), lipsync=MouthLipSync(),
                    settings=TalkingHeadSettings(sampler="ddpm", steps=10, prefix_frames=1))
