"""Benchmark of the default generator end to end: seconds from an utterance to its finished clip,
per stage (voice, sampling, frame clean-up, lip sync, MP4 encoding), for about 3 seconds of speech.

    python tests/benchmarks/bench_talking_head.py [--weights model/weights] [--threads 2]
        [--settings dpm++:10,dpm++:20,ddim:50] [--repeats 2]

Each row is one sampler setting on the same utterance; the ratio column compares total time with
the first row, measured in the same run. DDPM-1000 (the paper's sampler) is extrapolated from the
measured per-chunk sampling time of the first row (x 1000 / its steps); running it would take hours.
The issue's bar is "3 s of talking head in at most 60 s on this 2-core CPU". Timings are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from model.clip import Request
from model.media import write_mp4
from model.talking_head import WEIGHTS_DIR, TalkingHead, TalkingHeadSettings, plan_chunks

TEXT = "Place green at b two now, then set blue by c four please."  # about 3 s with espeak-ng


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", default="dpm++:10,dpm++:20,ddim:50", help="sampler:steps, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting (median reported)")
    parser.add_argument("--text", default=TEXT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for spec in args.settings.split(","):
        sampler, steps = spec.split(":")
        settings = TalkingHeadSettings(sampler=sampler, steps=int(steps))
        head = TalkingHead.from_weights(args.weights, settings=settings)
        head.generate(Request(text="warm up", caption="A woman is talking"))  # first-call allocations
        runs = []
        for r in range(args.repeats):
            start = time.perf_counter()
            clip = head.generate(Request(text=args.text, caption="A woman is talking", seed=r, session="bench"))
            t_encode = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                write_mp4(Path(tmp) / "c.mp4", clip.video, clip.audio, fps=clip.fps, sample_rate=clip.sample_rate)
            end = time.perf_counter()
            chunks = len(plan_chunks(clip.video.shape[0], head.config.unet.frames, settings.prefix_frames))
            runs.append({**clip.info["timings"], "encode": end - t_encode, "total": end - start, "seconds": clip.seconds,
                         "chunks": chunks})
        med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in ("voice", "sampling", "postfilter", "lipsync", "encode", "total", "seconds", "chunks")}
        rows.append((f"{sampler}-{steps}", int(steps), med))

    base_total = rows[0][2]["total"]
    print(f"\nutterance: {args.text!r}; {args.threads} torch threads; weights {args.weights}")
    print(f"{'sampler':<10} {'speech s':>8} {'chunks':>6} {'voice':>7} {'sampling':>9} {'clean-up':>8} {'lipsync':>8} {'encode':>7} {'total':>7} {'s/out s':>8} {'ratio':>6}")
    for name, _, m in rows:
        print(f"{name:<10} {m['seconds']:>8.2f} {m['chunks']:>6.0f} {m['voice']:>7.2f} {m['sampling']:>9.2f} {m['postfilter']:>8.2f} {m['lipsync']:>8.2f} "
              f"{m['encode']:>7.2f} {m['total']:>7.2f} {m['total'] / m['seconds']:>8.2f} {m['total'] / base_total:>6.2f}")
    name, steps, m = rows[0]
    ddpm = m["sampling"] * 1000 / steps
    print(f"{'ddpm-1000':<10} {m['seconds']:>8.2f} {m['chunks']:>6.0f} {'':>7} {ddpm:>9.0f} {'':>8} {'':>8} {'':>7} {ddpm:>7.0f} "
          f"{ddpm / m['seconds']:>8.0f} {ddpm / base_total:>6.0f}  (extrapolated from {name})")
    three = rows[0][2]["total"] / rows[0][2]["seconds"] * 3.0
    print(f"\n3 s of talking head with {rows[0][0]}: about {three:.1f} s (bar: <= 60 s)")


if __name__ == "__main__":
    main()
