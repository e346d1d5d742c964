"""The mouth sharpener (model/restore/mouth.py): its pairs, its batches, and where it may change a frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.lipsync.checkpoint import save_model
from model.lipsync.networks import build, preset
from model.lipsync.refine import LipSync
from model.restore.mouth import MouthBatches, MouthSharpener, mouth_centre, patch_origin, speckle_degrade
from model.restore.network import RestoreConfig, RestoreNet
from model.restore.restorer import Restorer
from model.restore.train import RestoreTrainConfig, save_restorer, train_restore

SIDE = 32  # a small network's square


def _sharpener(seed: int = 0) -> MouthSharpener:
    torch.manual_seed(seed)
    config = RestoreConfig(image_size=SIDE, patch=2, width=16, blocks=1, mid_blocks=1, groups=4, attention=False, name="mouth")
    net = RestoreNet(config)
    for p in net.out[-1].parameters():  # the last layer starts at zero (identity); make it draw something
        torch.nn.init.normal_(p, std=0.05)
    return MouthSharpener(Restorer(net))


def _pairs(n: int = 6, frames: int = 4, side: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 256, (n, frames, side, side, 3), dtype=np.uint8)
    synced = np.clip(truth.astype(int) + rng.integers(-20, 21, truth.shape), 0, 255).astype(np.uint8)
    agree = rng.random((n, frames)).astype(np.float32)
    return {"synced": synced, "truth": truth, "agree": agree, "index": np.arange(n), "origin": np.zeros((n, 2), np.int32)}


def test_the_patch_centres_on_the_change_and_stays_inside_the_image() -> None:
    change = np.zeros((256, 256), np.float32)
    change[150:160, 120:140] = 1.0
    centre = mouth_centre(change, (10.0, 10.0))
    assert centre == pytest.approx((154.5, 129.5))
    assert mouth_centre(np.zeros((8, 8)), (3.0, 4.0)) == (3.0, 4.0)  # nothing changed: the default
    assert patch_origin(centre, 256, 256, 128) == (90, 66)
    assert patch_origin((250.0, 5.0), 256, 256, 128) == (128, 0)  # moved inside


def test_speckled_inputs_keep_their_size_range_and_broad_shapes() -> None:
    x = torch.full((3, 3, 64, 64), -0.8)
    x[:, :, 24:40, 16:48] = 0.8  # a light band: a mouth's teeth
    y = speckle_degrade(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= -1 and float(y.max()) <= 1
    assert not torch.equal(y, x)
    assert float(y[:, :, 28:36, 24:40].mean()) > float(y[:, :, :12].mean()) + 0.8  # the band is still there


def test_batches_draw_agreeing_lipsynced_frames_and_degraded_truth_without_a_reference() -> None:
    pairs = _pairs()
    batches = MouthBatches(pairs, keep=0.5, size=32)
    assert batches.threshold == pytest.approx(float(np.quantile(pairs["agree"], 0.5)))
    assert (pairs["agree"][tuple(batches.good.T)] <= batches.threshold).all() and len(batches.good) == 12
    x, ref, target = batches.draw(8, 0.5, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert x.shape == ref.shape == target.shape == (8, 3, 32, 32)
    assert not ref.any()  # no reference
    # the first half are lip-synced crops (within the pairs' +-20 levels of their truth), the rest degraded
    assert float((x[:4] - target[:4]).abs().max()) <= 2 * 20 / 255 + 1e-6
    with pytest.raises(ValueError, match="keep"):
        MouthBatches(pairs, keep=0.0)


def test_the_sharpener_changes_only_what_lip_sync_drew() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    weight = np.zeros((2, 64, 64), np.float32)
    weight[0, 30:40, 20:44] = 1.0
    weight[1, 40:50, 30:50] = 0.5
    out = _sharpener().sharpen(frames, weight)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[weight == 0], frames[weight == 0])
    assert not np.array_equal(out[0, 30:40, 20:44], frames[0, 30:40, 20:44])
    assert not np.array_equal(out[1, 40:50, 30:50], frames[1, 40:50, 30:50])
    small = rng.integers(0, 256, (1, 24, 24, 3), dtype=np.uint8)  # smaller than its square: left alone
    assert np.array_equal(_sharpener().sharpen(small, np.ones((1, 24, 24), np.float32)), small)


def test_lip_sync_sharpens_only_frames_larger_than_its_crop(tmp_path) -> None:
    torch.manual_seed(0)
    save_model(tmp_path, build(preset("wav2lip", "tiny")), preset("wav2lip", "tiny"))
    lips = LipSync.load(tmp_path)
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 200 * t) * np.clip(np.sin(2 * np.pi * 2 * t), 0, None)).astype(np.float32)
    rng = np.random.default_rng(0)
    calls = []

    class Spy:
        def sharpen(self, frames, weight):
            calls.append(weight.shape)
            return np.zeros_like(frames)

    for side in (64, 128):
        frames = rng.integers(60, 200, (16, side, side, 3), dtype=np.uint8)
        plain = lips.refine(frames, audio)
        lips.mouth = Spy()
        sharpened = lips.refine(frames, audio)
        lips.mouth = None
        if side == 64:  # 64-pixel frames: the generator's own mouth
            assert np.array_equal(sharpened, plain) and not calls
        else:
            assert calls and calls[0][1:] == (side, side) and not sharpened.any()


def test_training_a_small_sharpener_lowers_its_loss_and_it_loads(tmp_path) -> None:
    pairs = _pairs(n=8, frames=4, side=SIDE)
    pairs["synced"] = np.clip(pairs["truth"].astype(int) // 2 + 64, 0, 255).astype(np.uint8)  # a learnable change
    batches = MouthBatches(pairs, keep=1.0, size=SIDE, held=MouthBatches(pairs, keep=1.0, size=SIDE))
    config = RestoreConfig(image_size=SIDE, patch=2, width=16, blocks=1, mid_blocks=1, groups=4, attention=False, name="mouth")
    train = RestoreTrainConfig(steps=30, batch_size=8, lr=3e-3, save_every=30, log_every=10, generated_share=1.0, amp=False,
                               ema_decay=0.5)
    last = train_restore(config, train, batches, tmp_path, progress=False)
    assert last["val_generated"] < last["val_generated_input"]
    sharpener = MouthSharpener.load(tmp_path)
    assert sharpener.side == SIDE
    save_restorer(tmp_path, sharpener.restorer.net.state_dict(), config)  # the shipped layout round-trips
    assert (tmp_path / "loss.png").is_file() and (tmp_path / "samples.png").is_file()
