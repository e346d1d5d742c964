"""A quick look at a training run on a machine without the receiver's media stack (no PyAV, no TTS).

    python deploy/gpu/sample_sheet.py RUN_FOLDER sheet.png [--clips 4] [--steps 20] [--device cuda]

Samples ``--clips`` one-second joint clips from noise with DPM-Solver++ (captions in turn), writes a
contact sheet (one row per clip: every 4th frame and the audio's loudness envelope drawn below) and
prints each clip's audio envelope figures (``model.evaluation.envelope``: level range in dB, share
of modulation at 2-8 Hz) and the seconds per clip. Needs numpy, OpenCV and torch only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model.diffusion.audio_codec import audio_codec  # noqa: E402
from model.diffusion.av import AV  # noqa: E402
from model.diffusion.checkpoint import load_model  # noqa: E402
from model.diffusion.generate import audio_from_model  # noqa: E402
from model.diffusion.guidance import conditioned  # noqa: E402
from model.diffusion.sampling import sample  # noqa: E402
from model.diffusion.schedule import linear_schedule  # noqa: E402
from model.evaluation.envelope import envelope_stats  # noqa: E402
from model.lipsync.metric import rms_envelope  # noqa: E402

SCALE = 2  # pixels per model pixel in the sheet


def _envelope_strip(audio: np.ndarray, width: int, height: int) -> np.ndarray:
    env = rms_envelope(audio.astype(np.float64), width, fps=width / (len(audio) / 16000), rate=16000)
    db = np.clip((20 * np.log10(env + 1e-6) + 60) / 60, 0, 1)
    strip = np.full((height, width, 3), 255, np.uint8)
    for x, level in enumerate(db):
        strip[height - 1 - int(level * (height - 1)):, x] = (80, 80, 80)
    return strip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a folder with model.safetensors + config.json")
    parser.add_argument("png", type=Path)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    model, config = load_model(args.run, device)
    schedule = linear_schedule(config.schedule)
    codec = audio_codec(config)
    cfg = config.unet
    rows, figures = [], []
    for k in range(args.clips):
        g = torch.Generator().manual_seed(args.seed + k)
        noise = AV(torch.randn((1, cfg.frames, cfg.video_channels, cfg.image_size, cfg.image_size), generator=g),
                   torch.randn((1, cfg.audio_channels, cfg.audio_length), generator=g)).to(device)
        caption = torch.full((1,), 1 + k % (len(config.captions) - 1) if len(config.captions) > 1 else 0,
                             dtype=torch.long, device=device)
        t0 = time.perf_counter()
        with torch.no_grad():
            x = sample("dpm++", conditioned(model, caption), schedule, noise, args.steps)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        video = ((x.video[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()  # [F, C, H, W]
        audio = audio_from_model(codec, x.audio.cpu())
        stats = envelope_stats(audio)
        figures.append({"clip": k, "caption": config.captions[int(caption)], **stats, "seconds": round(seconds, 2)})
        frames = [cv2.resize(f.transpose(1, 2, 0)[:, :, ::-1], None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
                  for f in video[::4]]
        row = np.concatenate(frames, axis=1)
        rows.append(np.concatenate([row, _envelope_strip(audio, row.shape[1], 24)], axis=0))
    sheet = np.concatenate([np.pad(r, ((0, 4), (0, 0), (0, 0)), constant_values=255) for r in rows], axis=0)
    args.png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.png), sheet)
    for f in figures:
        print(json.dumps(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
