"""The upscaler (issue 24): the restorer network with ``scale`` 4, its training pairs, its trainer, and
its place in a call (256-pixel clips that copy the call's face at 256)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.call import FaceStore
from model.clip import Request
from model.diffusion.config import preset
from model.restore.network import RestoreConfig, RestoreNet
from model.restore.restorer import Restorer
from model.restore.train import DetailBatches, RestoreTrainConfig, train_restore
from model.talking_head import TalkingHead, TalkingHeadSettings
from tests.model.test_call import CopyFaceModel, FakePortrait
from tests.model.test_talking_head import MouthLipSync, SecondsVoice

TINY = RestoreConfig(image_size=16, patch=1, width=16, blocks=1, mid_blocks=1, groups=8, head_channels=32, scale=4, name="upscale")


def _stills(people: int = 6, per: int = 3, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """"People" of one colour each with a fine checker texture (gone at a quarter of the size, so only a
    reference can give it back) and a dark bar that moves from still to still (their "mouth")."""
    rng = np.random.default_rng(0)
    colours = rng.integers(60, 200, size=(people, 3))
    yy, xx = np.mgrid[:size, :size]
    checker = np.where((yy // 2 + xx // 2) % 2, 40, -40)[..., None]
    images = np.empty((people * per, size, size, 3), np.uint8)
    for i in range(people * per):
        images[i] = np.clip(colours[i // per] + checker, 0, 255)
        row = size // 2 + (i % per) * 4
        images[i, row : row + 3, size // 4 : 3 * size // 4] = 20
    return images, np.repeat(np.arange(people), per).astype(np.int32)


def test_a_new_upscaler_returns_the_bicubic_upsampling_and_reads_a_reference_at_its_output_size() -> None:
    net = RestoreNet(TINY)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    ref = torch.rand(1, 3, 64, 64) * 2 - 1
    y = net(x, ref)
    assert y.shape == (3, 3, 64, 64)
    assert torch.allclose(y, F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False))
    with pytest.raises(ValueError, match="64x64"):
        net(x, torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError):
        RestoreConfig(scale=3)
    assert TINY.output_size == 64 and RestoreConfig().output_size == 64


def test_one_reference_for_a_batch_gives_what_a_reference_per_frame_gives() -> None:
    torch.manual_seed(0)
    net = RestoreNet(TINY).eval()
    for p in net.parameters():  # leave zero initialisation so the reference matters
        torch.nn.init.normal_(p, std=0.05)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    ref = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        shared, each = net(x, ref), net(x, ref.expand(3, -1, -1, -1))
        other = net(x, torch.rand(1, 3, 64, 64) * 2 - 1)
    assert torch.allclose(shared, each, atol=1e-5)
    assert not torch.allclose(shared, other, atol=1e-3)


def test_detail_batches_pair_each_still_with_another_of_its_person() -> None:
    images, speaker = _stills()
    batches = DetailBatches(images, speaker, input_size=16, reference_dropout=0.0)
    idx = np.arange(len(images))
    refs = batches.references(idx, np.random.default_rng(0))
    assert (speaker[refs] == speaker[idx]).all() and (refs != idx).all()
    lonely = DetailBatches(images[:1], speaker[:1], input_size=16)
    assert lonely.references(np.array([0]), np.random.default_rng(0)).tolist() == [0]
    x, ref, target = batches.draw(8, 0.5, np.random.default_rng(1), torch.Generator().manual_seed(1))
    assert x.shape == (8, 3, 16, 16) and ref.shape == target.shape == (8, 3, 64, 64)
    # the clean half of the inputs is the target area-downsampled (the colour change applied to both)
    assert torch.allclose(x[4:], F.interpolate(target[4:], size=16, mode="area"), atol=1e-5)
    dropped = DetailBatches(images, speaker, input_size=16, reference_dropout=0.99)
    _, ref, _ = dropped.draw(8, 0.0, np.random.default_rng(1), torch.Generator().manual_seed(1))
    assert (ref == 0).all()
    with pytest.raises(ValueError):
        DetailBatches(images, speaker, input_size=48)


def test_training_beats_bicubic_and_the_upscaler_loads(tmp_path) -> None:
    images, speaker = _stills()
    batches = DetailBatches(images, speaker, input_size=16, reference_dropout=0.2)
    train = RestoreTrainConfig(steps=60, batch_size=8, lr=3e-3, ema_decay=0.9, save_every=30, log_every=5, amp=False,
                               generated_share=0.0)
    torch.manual_seed(0)
    last = train_restore(TINY, train, batches, tmp_path / "run", val=batches, progress=False)
    assert last["val_synthetic"] < last["val_synthetic_input"]  # better than bicubic on its stills
    assert (tmp_path / "run" / "samples.png").is_file() and (tmp_path / "run" / "loss.png").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["scale"] == 4
    upscaler = Restorer.load(tmp_path / "run")
    out = upscaler.upscale(images[:2, ::4, ::4], images[0])
    assert out.shape == (2, 64, 64, 3) and out.dtype == np.uint8
    assert upscaler.upscale(images[:1, ::4, ::4], None).shape == (1, 64, 64, 3)
    with pytest.raises(ValueError):
        upscaler.upscale(images[:2], images[0])  # frames at the output size
    aligned = Restorer(RestoreNet(dataclasses.replace(TINY, align=True)))  # a reference per frame, warped onto it
    assert aligned.upscale(images[:3, ::4, ::4], images[0]).shape == (3, 64, 64, 3)


def _head(upscaler, native: int = 16, **settings) -> TalkingHead:
    """The call tests' stand-ins, drawing ``native``-pixel frames."""
    config = preset("tiny-ref")
    config = dataclasses.replace(config, unet=dataclasses.replace(config.unet, image_size=native))
    base = TalkingHeadSettings(sampler="ddim", steps=3, prefix_frames=1, unconditional_seconds=0.5, postfilter=False,
                               head_motion=False)
    return TalkingHead(CopyFaceModel(config), config, voice=SecondsVoice(), lipsync=MouthLipSync(),
                       portrait=FakePortrait(native), upscaler=upscaler, settings=dataclasses.replace(base, **settings))


class CountingUpscaler(Restorer):
    """The tiny untrained upscaler (bicubic), recording the references it was handed."""

    def __init__(self) -> None:
        super().__init__(RestoreNet(TINY))
        self.references: list = []

    def restore(self, frames, reference, batch=64):
        self.references.append(reference)
        return super().restore(frames, reference, batch)

    upscale = restore


def test_an_adversarial_fine_tune_starts_from_its_init_keeps_its_critic_and_resumes(tmp_path) -> None:
    """``--adversarial-weight``: a patch critic beside L1, saved as critic.pt and read back on resume;
    ``--init``: the run starts from another upscaler's weights."""
    images, speaker = _stills()
    batches = DetailBatches(images, speaker, input_size=16, reference_dropout=0.5)
    plain = RestoreTrainConfig(steps=20, batch_size=4, lr=3e-3, ema_decay=0.9, save_every=20, log_every=5, amp=False, generated_share=0.0)
    train_restore(TINY, plain, batches, tmp_path / "init", val=batches, progress=False)
    gan = dataclasses.replace(plain, steps=4, save_every=2, lr=1e-4, adversarial_weight=0.01)
    first = train_restore(TINY, gan, batches, tmp_path / "gan", val=batches, init=tmp_path / "init", progress=False)
    assert (tmp_path / "gan" / "critic.pt").is_file() and np.isfinite(first["loss"])
    start = Restorer.load(tmp_path / "init").upscale(images[:2, ::4, ::4], None)
    tuned = Restorer.load(tmp_path / "gan").upscale(images[:2, ::4, ::4], None)
    fresh = Restorer(RestoreNet(TINY)).upscale(images[:2, ::4, ::4], None)  # bicubic
    # a few small steps from the init, not from scratch
    assert np.abs(start.astype(int) - tuned.astype(int)).mean() < 0.5 * np.abs(fresh.astype(int) - tuned.astype(int)).mean()
    more = train_restore(TINY, dataclasses.replace(gan, steps=6), batches, tmp_path / "gan", val=batches, progress=False)
    assert more["step"] == 6
    with pytest.raises(ValueError):
        RestoreTrainConfig(adversarial_weight=-1.0)


def test_a_call_upscales_every_clip_with_its_face_at_the_output_size(tmp_path) -> None:
    upscaler = CountingUpscaler()
    head = _head(upscaler)
    assert head.output_size == 64 and head.upscales
    call = head.open_call("bob", store=tmp_path)
    clip = call.say(Request(caption="A man is talking", text="0.5", seed=1))
    assert clip.video.shape[1:] == (64, 64, 3) and clip.info["size"] == 64
    face = call.face
    assert face.hires is not None and face.hires.shape == (64, 64, 3)
    assert upscaler.references[0] is None  # the drawn face, upscaled once on its own
    assert all(r is face.hires for r in upscaler.references[1:])  # then every chunk copies it
    call.say(Request(text="0.3", seed=2))
    assert all(r is face.hires for r in upscaler.references[1:])
    # the large face is kept with the call and read back (a receiver restart)
    again = FaceStore(tmp_path).load()
    assert again.hires is not None and np.array_equal(again.hires, face.hires)
    assert json.loads((tmp_path / "face.json").read_text())["hires"] is True


@pytest.mark.parametrize("where", ["output", "model"])
def test_lip_sync_runs_on_the_upscaled_frames_with_the_box_of_the_models_size(tmp_path, where) -> None:
    """``lipsync_at="output"`` (the default): the mouth is redrawn on the upscaled frames, the face box
    found at the joint model's size; ``"model"``: on the joint model's frames, before upscaling. The
    clips are the output size either way; a style image is driven at the output size too."""
    from model.pipeline import draw_portrait

    head = _head(CountingUpscaler(), lipsync_at=where)
    call = head.open_call("dora", store=tmp_path)
    clip = call.say(Request(caption="A woman is talking", text="0.5", seed=1))
    silent = call.say(Request(seed=2))  # no speech text: lip sync reads the sampled audio at the end
    styled = call.say(Request(text="0.4", style_image=draw_portrait(tmp_path / "eve.png", gender="female", seed=1)))
    assert all(c.video.shape[1:] == (64, 64, 3) for c in (clip, silent, styled))
    expected = (64, 16) if where == "output" else (16, None)
    assert head.lipsync.sizes == [expected] * 3


def test_size_64_keeps_the_joint_models_frames_and_a_size_it_cannot_make_is_refused() -> None:
    upscaler = Restorer(RestoreNet(dataclasses.replace(TINY, image_size=64)))  # 64 -> 256, as shipped
    head = _head(upscaler, native=64, size=64)
    assert head.output_size == 64 and not head.upscales
    call = head.open_call("eve")
    clip = call.say(Request(caption="A woman is talking", text="0.3", seed=1))
    assert clip.video.shape[1:] == (64, 64, 3) and call.face.hires is None
    head.settings = dataclasses.replace(head.settings, size=None)  # the default: the upscaler's size
    assert head.output_size == 256
    assert _head(None, native=64).output_size == 64  # no upscaler: the joint model's size
    with pytest.raises(ValueError, match="no upscaler"):
        _head(None, native=64, size=256)
    with pytest.raises(ValueError, match="--size 256"):
        _head(CountingUpscaler(), size=256)  # this one makes 64


def test_the_reference_is_warped_onto_each_frames_pose() -> None:
    import cv2

    from model.corpus.stills import StillsConfig, render_speaker, stills_speakers
    from model.restore.align import align_to

    speaker = stills_speakers(StillsConfig(out=None, speakers=1, size=256))[0]
    face = render_speaker((speaker, 1, 256, 0, True))[0]
    turned = cv2.warpAffine(face, cv2.getRotationMatrix2D((128, 128), 4.0, 1.0) + np.array([[0, 0, 8.0], [0, 0, -6.0]]),
                            (256, 256), borderMode=cv2.BORDER_REPLICATE)
    frames = np.stack([cv2.resize(im, (64, 64), interpolation=cv2.INTER_AREA) for im in (face, turned)])
    aligned = align_to(frames, face)
    assert aligned.shape == (2, 256, 256, 3)
    err = lambda a, b: np.abs(a.astype(np.float32) - b.astype(np.float32))[32:-32, 32:-32].mean()  # noqa: E731
    assert err(aligned[0], face) < 1.0  # already aligned: (nearly) untouched
    assert err(aligned[1], turned) < 0.4 * err(face, turned)
    flat = np.full((1, 64, 64, 3), 128, np.uint8)
    assert align_to(flat, face).shape == (1, 256, 256, 3)  # no texture to fit: the face as it is


def test_the_face_is_pasted_where_the_frame_shows_it_unchanged_and_the_network_keeps_what_changed() -> None:
    """``paste_face``: far from a changed region the output is the aligned face at 256 pixel for pixel;
    inside it, the network's upscaled frame; the join is soft (no value outside the two)."""
    import cv2

    from model.restore.composite import paste_face

    rng = np.random.default_rng(0)
    face = cv2.resize(rng.integers(0, 255, (32, 32, 3)).astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST)
    frame = cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA)
    frame[40:52, 24:40] = (250, 20, 20)  # "the mouth" moved
    upscaled = np.full((256, 256, 3), 128, np.uint8)  # what the network made of the frame
    out = paste_face(frame[None], upscaled[None], face[None])[0]
    assert np.array_equal(out[:100], face[:100]) and np.array_equal(out[:, :60], face[:, :60])
    assert (out[168:200, 104:152] == 128).all()
    low, high = np.minimum(face, upscaled).astype(int) - 1, np.maximum(face, upscaled).astype(int) + 1
    assert ((out >= low) & (out <= high)).all()
    with pytest.raises(ValueError):
        paste_face(frame[None], upscaled[None], face[None, :128])


def test_the_upscaler_pastes_the_call_face_only_with_a_reference_and_can_be_told_not_to() -> None:
    torch.manual_seed(0)
    net = RestoreNet(dataclasses.replace(TINY, align=True)).eval()
    up = Restorer(net)
    face = np.random.default_rng(1).integers(0, 255, (64, 64, 3)).astype(np.uint8)
    frames = np.repeat(F.avg_pool2d(torch.from_numpy(face).permute(2, 0, 1)[None].float(), 4)[0].permute(1, 2, 0)
                       .round().byte().numpy()[None], 2, axis=0)
    pasted = up.upscale(frames, face)
    assert np.abs(pasted.astype(int) - face.astype(int)).mean() < 2  # the frames show the face unchanged: it is copied
    up.paste = False
    plain = up.upscale(frames, face)
    assert np.abs(plain.astype(int) - face.astype(int)).mean() > 10  # the new network alone is bicubic: no detail
    alone = up.upscale(frames, None)
    assert np.array_equal(alone, plain)  # a new network ignores its reference; without one nothing is pasted


def test_a_drawn_faces_upscaled_frames_are_sharpened_last_and_a_style_image_keeps_its_own_detail(tmp_path) -> None:
    """``sharpen`` (default 0.6): an unsharp mask on the luma of the upscaled frames of a drawn face,
    the last step; 0 leaves them as the upscaler made them. A style image is never sharpened."""
    from model.pipeline import draw_portrait
    from model.postfilter import sharpen_luma

    soft, sharp = _head(Restorer(RestoreNet(TINY)), sharpen=0.0), _head(Restorer(RestoreNet(TINY)), sharpen=1.0)
    request = Request(caption="A man is talking", text="0.5", seed=1)
    plain, sharpened = soft.open_call("bob").say(request), sharp.open_call("bob").say(request)
    assert plain.info["sharpen"] == 0.0 and sharpened.info["sharpen"] == 1.0
    assert np.array_equal(sharpened.video, sharpen_luma(plain.video, 1.0))
    path = draw_portrait(tmp_path / "ann.png", gender="female", seed=4)
    styled = [head.open_call("ann").say(Request(text="0.5", style_image=path, seed=1)) for head in (soft, sharp)]
    assert styled[1].info["sharpen"] == 0.0 and np.array_equal(styled[0].video, styled[1].video)
    with pytest.raises(ValueError, match="--sharpen"):
        TalkingHeadSettings(sharpen=-1.0)
