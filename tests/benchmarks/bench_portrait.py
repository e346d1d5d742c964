"""The portrait model's faces (a call's person): caption adherence, fidelity, time, per sampler setting.

    python tests/benchmarks/bench_portrait.py [--weights model/weights/portrait] [--faces 16]
        [--settings ancestral:100:3,dpm++:50:5] [--threads 2] [--seed 7000] [--png portraits.png]

For each ``sampler:steps:cfg`` setting, ``--faces`` faces per caption ("A man", "A woman") are drawn
(seeds from ``--seed``; the eval's are different), then: the face-gender judge's agreement with the
caption (``model/weights/gender``), the two-sample classifier's accuracy against held-out corpus
frames (one frame per corpus clip; 50 % = indistinguishable), luma detail and colour noise as ratios
to those frames, and seconds per face. ``--png`` draws the first faces of every setting. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from model.corpus.cache import SegmentCache
from model.evaluation.fidelity import TwoSampleConfig, ratios, statistics, two_sample_test
from model.evaluation.gender import GenderClassifier
from model.portrait.sample import PortraitModel
from model.talking_head import WEIGHTS_DIR

HOME = Path("~/.cache/textcall/corpus").expanduser()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR / "portrait")
    parser.add_argument("--faces", type=int, default=16, help="faces per caption and setting")
    parser.add_argument("--settings", default="ancestral:100:3,dpm++:50:5", help="sampler:steps:cfg, comma-separated (the receiver draws with ancestral:100:3)")
    parser.add_argument("--caches", default=f"{HOME / 'cache64'},{HOME / 'cache64-s1'}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7000)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = PortraitModel.load(args.weights)
    judge = GenderClassifier.load(WEIGHTS_DIR / "gender")
    corpus = []
    for cache in args.caches.split(","):
        test = SegmentCache(cache, split="test")
        corpus += [test[i].video[8].transpose(1, 2, 0)[None] for i in range(len(test))]
    base = statistics(corpus)
    rows, pictures = [], []
    for spec in args.settings.split(","):
        sampler, steps, cfg = spec.split(":")
        faces, wanted = [], []
        began = time.perf_counter()
        for g, caption in enumerate(("A man is talking", "A woman is talking")):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                drawn = model.sample(caption, seed=args.seed + g, count=args.faces, sampler=sampler, steps=int(steps), cfg_scale=float(cfg))
            faces += list(drawn)
            wanted += [("male", "female")[g]] * args.faces
        per_face = (time.perf_counter() - began) / len(faces)
        judged = [judge.predict_clip(f[None]) for f in faces]
        adherence = float(np.mean([j == w for j, w in zip(judged, wanted)]))
        test = two_sample_test([f[None] for f in faces], corpus, TwoSampleConfig(frames_per_clip=1))
        r = ratios(statistics([f[None] for f in faces]), base)
        rows.append((spec, adherence, test["accuracy"], r, per_face))
        pictures.append(np.stack(faces[:8] + faces[args.faces : args.faces + 8]))
    print(f"\n{args.faces} faces per caption; weights {args.weights}; corpus frames {len(corpus)}")
    print(f"{'sampler:steps:cfg':<18} {'caption adherence':>17} {'two-sample acc.':>15} {'detail':>7} {'colour':>7} {'s/face':>7}")
    for spec, adherence, accuracy, r, per_face in rows:
        print(f"{spec:<18} {adherence:>17.3f} {accuracy:>15.3f} {r['luma detail']:>7.2f} {r['colour noise']:>7.2f} {per_face:>7.2f}")
    if args.png:
        from model.media import image_grid

        image_grid(np.concatenate(pictures), args.png, columns=16, scale=2)
        print(f"picture: {args.png} (one row per setting: 8 men, then 8 women)")


if __name__ == "__main__":
    main()
