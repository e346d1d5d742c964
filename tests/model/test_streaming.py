"""Streaming generation (issue 26): an utterance's chunks come out as soon as they are final, and the
chunks joined are the clip a whole-utterance render gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model.clip import Chunk, Clip, Request, join_chunks, split_clip
from model.postfilter import Windowed, postfilter, smooth_in_time
from model.stub import StubGenerator
from model.talking_head import TalkingHead
from tests.model.test_call import MarkingRestorer, head  # noqa: F401  (the fixture: a tiny reference model with fakes around it)
from tests.model.lipsync.test_refine import _speech, lips  # noqa: F401


def _video(n: int, seed: int = 0, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("pushes", [[1], [3], [16], [5, 5, 5], [1, 1, 1, 1, 1, 1, 1], [12, 12, 3], [2, 9, 1, 4]])
@pytest.mark.parametrize("which", ["smooth", "postfilter"])
def test_a_windowed_filter_streamed_equals_it_on_the_whole_clip(pushes, which) -> None:
    video = _video(sum(pushes))
    fn, reach = (lambda v: smooth_in_time(v, 1.0), 2) if which == "smooth" else (postfilter, 4)
    stream = Windowed(fn, reach)
    out, start = [], 0
    for n in pushes:
        out.append(stream.push(video[start : start + n]))
        start += n
        assert sum(len(o) for o in out) == max(0, start - reach)  # all but the last `reach` frames are final
    out.append(stream.finish())
    assert np.array_equal(np.concatenate(out), fn(video))


def test_lip_sync_chunk_by_chunk_equals_the_whole_clip(lips) -> None:  # noqa: F811
    from model.corpus.face import FaceRenderer, FaceState
    from model.corpus.speakers import make_speakers
    from model.lipsync.face import clip_box
    import cv2

    speaker = make_speakers(1, seed=5)[0]
    frame = cv2.resize(FaceRenderer(speaker.look).render(FaceState())[..., ::-1], (96, 96))
    frames = np.ascontiguousarray(np.broadcast_to(frame, (20, 96, 96, 3)))
    audio = _speech(20 / 16)
    whole = lips.refine(frames, audio)
    stream = lips.stream(audio, len(frames))
    stream.box = clip_box(frames)  # refine's box is the whole clip's; a stream's is its first chunk's
    pieces = [stream.push(frames[a:b]) for a, b in ((0, 7), (7, 8), (8, 20))]
    assert np.array_equal(np.concatenate(pieces), whole)
    with pytest.raises(ValueError, match="21 frames"):
        stream.push(frames[:1])


def test_the_talking_head_hands_out_chunks_before_the_last_is_sampled(head) -> None:  # noqa: F811
    head.settings = dataclasses.replace(head.settings, postfilter=True, head_motion=True)
    head.restorer = MarkingRestorer()  # the default clean-up: a Gaussian over time (2 frames ahead), then the restorer
    sampled = []
    original = head.chunks.sample_chunk

    def counting(*args, **kwargs):
        sampled.append(1)
        return original(*args, **kwargs)

    head.chunks.sample_chunk = counting
    call = head.open_call("streamer")
    request = Request(caption="A woman is talking", text="2.0", seed=7)
    seen = []
    for chunk in call.stream(request):
        seen.append((len(sampled), chunk))
    chunks = [c for _, c in seen]
    assert len(chunks) >= 3 and chunks[-1].last and not any(c.last for c in chunks[:-1])
    assert seen[0][0] == 1  # the first chunk is out after one chunk's sampling
    assert seen[-2][0] < len(sampled)  # ... and every one but the last before the last chunk is sampled
    clip = join_chunks(chunks)
    assert clip.seconds == pytest.approx(2.0) and clip.info["reference"] and clip.info["restored"]
    # the same utterance said whole (a new call on the same id: the same face, motion clock and seed)
    said = head.open_call("streamer").say(request)
    assert np.array_equal(said.video, clip.video) and np.array_equal(said.audio, clip.audio)


def test_a_style_image_and_no_speech_stream_too(head, tmp_path) -> None:  # noqa: F811
    from model.pipeline import draw_portrait

    path = draw_portrait(tmp_path / "anna.png", gender="female", seed=3)
    call = head.open_call("styled")
    chunks = list(call.stream(Request(text="2.0", style_image=path)))
    assert len(chunks) > 1 and join_chunks(chunks).seconds == pytest.approx(2.0)
    chunks = list(call.stream(Request(caption="A woman is talking")))  # no text: audio sampled with the frames
    assert chunks[-1].last and join_chunks(chunks).seconds == pytest.approx(head.settings.unconditional_seconds)


def test_a_refused_request_fails_before_any_chunk(head, tmp_path) -> None:  # noqa: F811
    from model.call import GenerationError

    stream = head.open_call("x").stream(Request(text="0.5", style_image=tmp_path / "missing.png"))  # no such image
    with pytest.raises(GenerationError):
        next(stream)


def test_chunks_join_only_in_order() -> None:
    clip = StubGenerator().generate(Request(text="hello there, how are you"))
    chunks = list(split_clip(clip, 5))
    assert join_chunks(chunks).video.shape == clip.video.shape
    with pytest.raises(ValueError, match="out of order"):
        join_chunks([chunks[1], chunks[0], *chunks[2:]])
    with pytest.raises(ValueError, match="last"):
        join_chunks(chunks[:-1])
    with pytest.raises(ValueError, match="span"):
        Chunk(clip.video[:2], clip.audio[:10])


def test_the_stub_streams_at_its_pace() -> None:
    import time

    stub = StubGenerator(pace=0.2)
    call = stub.open_call("paced")
    t0 = time.perf_counter()
    times = [time.perf_counter() - t0 for _ in call.stream(Request(text="x" * 40))]  # 2.4 s of media
    assert len(times) >= 3 and times[0] < times[-1]
    assert isinstance(join_chunks(StubGenerator().open_call("p").stream(Request(text="hi"))), Clip)


class SentencesVoice:
    """A test voice with ``stream``: the text is seconds per sentence ("1.5 2.0"); every sentence but
    the first takes ``slow`` seconds to make, and the time each piece came out is kept."""

    name = "sentences"

    def __init__(self, slow: float = 0.0) -> None:
        self.slow, self.made = slow, []

    def speakers(self):
        from model.speech.voice import SpeakerInfo

        return [SpeakerInfo("f1", "female"), SpeakerInfo("m1", "male")]

    def stream(self, text, *, speaker=None):
        import time

        from tests.model.test_talking_head import SecondsVoice

        for k, seconds in enumerate(text.split()):
            if k:
                time.sleep(self.slow)
            self.made.append(time.perf_counter())
            yield SecondsVoice().synthesize(seconds)

    def synthesize(self, text, *, speaker=None):
        from model.speech.voice import join

        return join(list(self.stream(text, speaker=speaker)))


def test_the_first_chunk_is_sampled_before_the_voice_says_the_rest(head) -> None:  # noqa: F811
    """The voice's first sentences are enough for the first chunk: it is sampled before the voice
    has made the rest, and the clip is the one the whole speech at once gives."""
    import time

    head.voice = SentencesVoice(slow=0.3)
    sampled = []
    original = head.chunks.sample_chunk

    def timed(*args, **kwargs):
        sampled.append(time.perf_counter())
        return original(*args, **kwargs)

    head.chunks.sample_chunk = timed
    request = Request(caption="A man is talking", text="1.5 1.0 1.0", seed=3)
    clip = join_chunks(head.open_call("talker").stream(request))
    assert len(head.voice.made) == 3 and sampled[0] < head.voice.made[1]  # chunk 0 before sentence 2 existed
    assert clip.seconds == pytest.approx(3.5, abs=1 / 16) and "voice" in clip.info["timings"]
    class AtOnce:  # the same voice without stream: the whole speech at once, as before
        name, voice = "at-once", SentencesVoice()
        speakers = voice.speakers
        synthesize = voice.synthesize

    head.voice, head.chunks.sample_chunk = AtOnce(), original
    at_once = head.open_call("talker").say(request)
    assert np.array_equal(at_once.audio, clip.audio) and np.array_equal(at_once.video, clip.video)


def test_speech_over_the_limit_is_refused(head) -> None:  # noqa: F811
    """Refused before anything when the text alone says so (over 25 characters a second); else when the
    voice has made that much (the first chunk may be out by then: the receiver tells its observers)."""
    from model.call import GenerationError

    head.voice = SentencesVoice()
    head.settings = dataclasses.replace(head.settings, max_speech_seconds=2.0)
    with pytest.raises(GenerationError, match="limit of 2 s"):
        list(head.open_call("long").stream(Request(text="1.5 1.5")))
    with pytest.raises(GenerationError, match="limit of 2 s"):
        next(head.open_call("longer").stream(Request(text="1.5 " * 20)))


def test_lip_sync_on_growing_speech_equals_it_on_the_whole(lips) -> None:  # noqa: F811
    """The first frames' mouths from the start of the speech, the rest once it is complete: the same
    as on the whole speech (mel steps are local; pushing frames too close to the known end is refused)."""
    import cv2

    from model.corpus.face import FaceRenderer, FaceState
    from model.corpus.speakers import make_speakers
    from model.lipsync.face import clip_box

    speaker = make_speakers(1, seed=6)[0]
    frame = cv2.resize(FaceRenderer(speaker.look).render(FaceState())[..., ::-1], (96, 96))
    frames = np.ascontiguousarray(np.broadcast_to(frame, (40, 96, 96, 3)))
    audio = _speech(40 / 16)
    whole = lips.stream(audio, 40)
    whole.box = clip_box(frames)
    expected = whole.push(frames)
    growing = lips.growing(audio[:24_000])  # 1.5 s known
    growing.box = whole.box
    with pytest.raises(ValueError, match="need"):
        growing.push(frames[:22])  # frame 21's window runs too close to the end of 1.5 s
    out = [growing.push(frames[:14])]
    growing.extend(audio, 40)
    out.append(growing.push(frames[14:]))
    assert np.array_equal(np.concatenate(out), expected)
