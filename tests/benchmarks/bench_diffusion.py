"""Benchmark of the joint diffusion model: parameters, seconds per denoising step, seconds per
generated second of video for DDPM-1000 / DDIM-50 / DPM-Solver++-20, and training throughput.

    python tests/benchmarks/bench_diffusion.py [--configs small,paper] [--threads 2] [--device cpu]

Per-step time is one network forward at batch 1 (median of a few). The fast samplers on ``small``
are also timed end to end; DDPM-1000 is always extrapolated from the measured per-step time
(1000 x s/step), and so is everything for ``paper`` (a single forward takes tens of seconds on a
2-core CPU). Classifier-free guidance doubles the batch: roughly x2 per step. Untrained weights (the
zero-initialised output layers are given random values so the timing sees real arithmetic).
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from model.diffusion.av import AV
from model.diffusion.classifier import AVClassifier
from model.diffusion.config import classifier_preset, preset
from model.diffusion.guidance import conditioned
from model.diffusion.sampling import ddim, dpmpp_2m
from model.diffusion.schedule import linear_schedule
from model.diffusion.train import diffusion_loss
from model.diffusion.unet import AVUNet, count_parameters


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _awake(net: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    return net


def _batch(cfg, b: int, device) -> AV:
    return AV(
        torch.randn(b, cfg.frames, cfg.video_channels, cfg.image_size, cfg.image_size, device=device),
        torch.randn(b, cfg.audio_channels, cfg.audio_length, device=device),  # waveform or mel frames
    )


def bench(name: str, device: torch.device, repeats: int, train_batch: int, train_steps: int, end_to_end: bool) -> list[str]:
    config = preset(name)
    cfg = config.unet
    net = _awake(AVUNet(cfg)).to(device).eval()
    clf = AVClassifier(classifier_preset(name)).to(device)
    seconds = cfg.frames / config.video_fps
    x = _batch(cfg, 1, device)
    t, c = torch.tensor([500], device=device), torch.tensor([1], device=device)
    times = []
    with torch.no_grad():
        net(x, t, c)  # warm-up
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            net(x, t, c)
            _sync(device)
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    params = count_parameters(net)
    rows = [
        f"{name:6s} {device.type:4s} params {params / 1e6:7.2f} M ({params * 4 / 2**20:.0f} MiB fp32), classifier "
        f"{count_parameters(clf) / 1e6:.2f} M; forward (B=1) {step:.3f} s/step; chunk = {seconds:g} s of video"
    ]
    for sampler, evals in (("DDPM-1000", 1000), ("DDIM-50", 50), ("DPM++-20", 20)):
        rows.append(f"    {sampler:10s} {evals * step:9.1f} s/chunk  {evals * step / seconds:9.1f} s per generated second (extrapolated)")
    if end_to_end:
        schedule = linear_schedule(config.schedule)
        den = conditioned(net, c)
        for label, run in (("DDIM-50", lambda: ddim(den, schedule, _batch(cfg, 1, device), 50)),
                           ("DPM++-20", lambda: dpmpp_2m(den, schedule, _batch(cfg, 1, device), 20))):
            _sync(device)
            t0 = time.perf_counter()
            run()
            _sync(device)
            total = time.perf_counter() - t0
            rows.append(f"    {label:10s} {total:9.1f} s/chunk  {total / seconds:9.1f} s per generated second (measured)")
    if train_steps:
        net.train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        loss_fn = diffusion_loss(linear_schedule(config.schedule), 0.1, config.prediction)
        gen = torch.Generator(device=device).manual_seed(0)
        x0 = _batch(cfg, train_batch, device).map(lambda v: v.clamp(-1, 1))
        cap = torch.ones(train_batch, dtype=torch.long, device=device)
        durations = []
        for _ in range(train_steps + 1):
            _sync(device)
            t0 = time.perf_counter()
            loss, _ = loss_fn(net, x0, cap, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            _sync(device)
            durations.append(time.perf_counter() - t0)
        per = statistics.median(durations[1:])
        rows.append(f"    training batch {train_batch}: {per:.2f} s/step, {1 / per:.3f} steps/s, {train_batch / per:.2f} samples/s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="small,paper")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    for name in args.configs.split(","):
        big = name == "paper" and device.type == "cpu"
        rows = bench(
            name, device,
            repeats=1 if big else args.repeats,
            train_batch=1 if big else 8,
            train_steps=1 if big else args.train_steps,
            end_to_end=not big,
        )
        print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
