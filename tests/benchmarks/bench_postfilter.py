"""What the frame clean-up (``model/postfilter.py``) does to sampled faces, against corpus frames.

    python tests/benchmarks/bench_postfilter.py [--weights model/weights] [--clips 8] [--steps 10]
        [--threads 2] [--png postfilter.png]

Samples ``--clips`` one-second caption clips (men and women in turn, DPM++, the no-text audio
autoguided as the receiver does), and prints, for held-out corpus clips (the test split of the
corpus cache), the raw samples and the filtered ones:

- ``luma detail``: mean |Laplacian| of the grey frames (edges and texture);
- ``colour noise``: mean |Laplacian| of the two Lab colour channels (the blotchy confetti);
- ``frame change``: mean |difference| between consecutive frames, in 8-bit levels (flicker and drift);
- ``ms per clip``: the filter's time for 16 frames.

Each figure is also given as a ratio to the corpus's. ``--png`` writes frames 0, 5, 10 and 15 of
the first clips: raw, filtered, and corpus clips beside them. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from model.corpus.cache import SegmentCache
from model.diffusion.checkpoint import load_model
from model.diffusion.generate import GuidanceConfig, build_guidance, generate_av
from model.evaluation.fidelity import statistics as figures  # the same measures as `textcall eval calls`
from model.postfilter import postfilter

CACHE = Path("~/.cache/textcall/corpus/cache64").expanduser()


def strip(clips: list[np.ndarray], n: int = 4) -> np.ndarray:
    """Frames 0, 5, 10, 15 of the first ``n`` clips: one row per clip."""
    picks = [0, 5, 10, 15]
    return np.concatenate([np.concatenate(list(c[[min(p, len(c) - 1) for p in picks]]), axis=1) for c in clips[:n]], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=Path("model/weights"))
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--data", type=Path, default=CACHE, help="corpus cache (its test split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=900)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    net, config = load_model(args.weights / "diffusion")
    guide = load_model(args.weights / "autoguide")[0] if (args.weights / "autoguide" / "config.json").is_file() else None
    raw = []
    for k in range(args.clips):
        stack = build_guidance(net, config, guidance=GuidanceConfig(audio_guide_scale=3.0), caption=1 + k % 2,
                               audio_guide=guide)
        video, _ = generate_av(stack, sampler="dpm++", steps=args.steps, seed=args.seed + k)
        raw.append(video)
    start = time.perf_counter()
    filtered = [postfilter(v) for v in raw]
    ms = 1000 * (time.perf_counter() - start) / len(raw)
    video, _, _ = SegmentCache(args.data, "test").arrays()
    corpus = list(np.asarray(video[: max(args.clips, 16)]).transpose(0, 1, 3, 4, 2))

    rows = {"corpus (test split)": figures(corpus), "sampled, raw": figures(raw), "sampled, filtered": figures(filtered)}
    ref = rows["corpus (test split)"]
    names = list(ref)
    print(f"{args.clips} caption clips, DPM++-{args.steps}; corpus: {len(corpus)} test clips; filter {ms:.0f} ms per clip")
    print(f"| | {' | '.join(names)} |\n|---|{'---|' * len(names)}")
    for label, row in rows.items():
        cells = [f"{row[n]:.2f}" + ("" if row is ref else f" ({row[n] / ref[n]:.2f}x)") for n in names]
        print(f"| {label} | {' | '.join(cells)} |")
    if args.png:
        image = np.concatenate([strip(raw), strip(filtered), strip(corpus)], axis=1)
        image = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(args.png), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        print(f"wrote {args.png} (columns: raw | filtered | corpus)")


if __name__ == "__main__":
    main()
