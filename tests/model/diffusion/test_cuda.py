"""CUDA: mixed-precision training steps and sampling on the GPU (skipped without one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.diffusion.config import preset
from model.diffusion.data import toy_segments
from model.diffusion.generate import build_guidance, generate_av
from model.diffusion.checkpoint import load_model
from model.diffusion.train import TrainConfig, run_training

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_amp_training_and_sampling_on_cuda(tmp_path) -> None:
    train = TrainConfig(steps=4, batch_size=2, save_every=4, log_every=2, amp=True)
    last = run_training(preset("tiny"), train, toy_segments(8, 4, 16, 4000), tmp_path, device="cuda", progress=False)
    assert np.isfinite(last["loss"])
    net, config = load_model(tmp_path, "cuda")
    video, audio = generate_av(build_guidance(net, config, caption=1), audio_condition=np.zeros(4000, np.float32), steps=4)
    assert video.shape == (4, 16, 16, 3) and audio.shape == (4000,)
