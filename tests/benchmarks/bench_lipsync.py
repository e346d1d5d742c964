"""Benchmark and measurements of the lip-sync networks.

    python tests/benchmarks/bench_lipsync.py [--threads 1] [--syncnet DIR] [--lipsync DIR] [--clips 12]

Prints: parameter counts (official and small), frames per second of ``LipSync.refine`` on 64x64
frames (small and official widths, untrained weights: the arithmetic is the same), and, with
``--syncnet``, the SyncNet offset / LSE-D / LSE-C and the model-free lag on held-out corpus clips
(the cache's test sentences, whole clips brought to 64x64 at 16 fps with the corpus loader's own
face track and crop, so they look like the frames the receiver refines), true and with the audio
delayed by 5 frames. With ``--lipsync`` too: the same on the generator's output driven by the clips'
own audio (refinement) and on the clips' first frame animated by that audio (still image).
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from model.lipsync.checkpoint import load_model, save_model
from model.lipsync.metric import delay_audio, motion_sync, pool_motion, pool_syncnet, syncnet_sync
from model.lipsync.networks import build, count_parameters, preset
from model.lipsync.refine import LipSync

CACHE = Path("~/.cache/textcall/corpus/cache64").expanduser()


def held_out_clips(n: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Whole test-split clips as uint8 [F, 64, 64, 3] at 16 fps + 16 kHz audio, cropped like the cache."""
    from model.audio import resample
    from model.corpus.grid import face_crop, face_track
    from model.corpus.media import read_clip

    index = json.loads((CACHE / "index.json").read_text())
    sources = list(dict.fromkeys(m["source"] for m in index["segments"]["test"]))
    rng = np.random.default_rng(0)
    out = []
    for src in rng.permutation(sources)[:n]:
        clip = read_clip(src)
        count = int(len(clip.frames) / clip.fps * 16)
        idx = np.minimum(((np.arange(count) + 0.5) / 16 * clip.fps).astype(int), len(clip.frames) - 1)
        track, found = face_track(clip.frames, idx, 3)
        if found == 0:
            continue
        frames = np.stack([face_crop(clip.frames[i], cx, cy, s, 64) for i, (cx, cy, s) in zip(idx, track)])
        out.append((frames, resample(clip.audio, clip.sample_rate, 16000)[: count * 1000], str(src)))
    return out


def measure(expert, clips, label: str) -> None:
    for shift in (0, 5):
        scores = [syncnet_sync(expert, f, delay_audio(a, shift)) for f, a, _ in clips]
        pooled = pool_syncnet(scores)
        free = pool_motion([(f, delay_audio(a, shift)) for f, a, _ in clips])
        offsets = [s.offset for s in scores]
        ok = sum(abs(o - shift) <= 1 for o in offsets)
        print(f"{label}, audio delayed {shift}: SyncNet per clip {offsets} ({ok}/{len(offsets)} within +/-1), "
              f"pooled offset {pooled.offset:+d}, LSE-D {np.mean([s.lse_d for s in scores]):.3f}, "
              f"LSE-C {np.mean([s.lse_c for s in scores]):.3f}; model-free pooled lag {free.lag:+d} "
              f"(per clip {[motion_sync(f, delay_audio(a, shift)).lag for f, a, _ in clips]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--syncnet", type=Path)
    parser.add_argument("--lipsync", type=Path)
    parser.add_argument("--clips", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    for kind in ("wav2lip", "syncnet"):
        print(kind, {name: f"{count_parameters(build(preset(kind, name))):,}" for name in ("official", "small", "tiny")})

    from model.corpus.cache import SegmentCache

    val = SegmentCache(CACHE, "val")
    frames = np.concatenate([val[i].video.transpose(0, 2, 3, 1) for i in range(4)])  # [64, 64, 64, 3]
    audio = np.concatenate([val[i].audio for i in range(4)])
    for name in ("small", "official"):
        with tempfile.TemporaryDirectory() as tmp:
            save_model(tmp, build(preset("wav2lip", name)), preset("wav2lip", name))
            lips = LipSync.load(tmp)
            lips.refine(frames[:16], audio[:16000])  # warm-up
            rates = []
            for _ in range(3):
                t = time.perf_counter()
                lips.refine(frames, audio)
                rates.append(len(frames) / (time.perf_counter() - t))
        print(f"LipSync.refine {name}: {max(rates):.1f} frames/s (best of 3, {len(frames)} frames 64x64, "
              f"{args.threads} thread(s))")

    if args.syncnet is None:
        return
    expert, _ = load_model(args.syncnet, kind="syncnet")
    clips = held_out_clips(args.clips)
    print(f"{len(clips)} held-out clips, {[len(f) for f, _, _ in clips]} frames")
    measure(expert, clips, "corpus clips")
    if args.lipsync is None:
        return
    lips = LipSync.load(args.lipsync)
    refined = [(lips.refine(f, a), a, p) for f, a, p in clips]
    measure(expert, refined, "refined by the generator")
    stills = [(lips.animate(f[0], a), a, p) for f, a, p in clips]
    measure(expert, stills, "first frame animated (still image)")


if __name__ == "__main__":
    main()
