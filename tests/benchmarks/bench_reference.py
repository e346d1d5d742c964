"""How closely a reference-conditioned joint model copies the face it is handed, and how its frames
compare with the corpus's, raw and after each clean-up (the restorer's when the weights have one).

    python tests/benchmarks/bench_reference.py --weights DIR [--clips 6] [--steps 10] [--threads 2]
        [--faces judge|portrait] [--png bench_reference.png]

Each clip is one second (one chunk) sampled with a reference face: a still of a person no generator
saw (``--faces judge``: the identity judge's own held-out stills; ``portrait``: faces the weights'
``portrait/`` model draws, as a call would). Printed per variant (raw frames, the default clean-up,
non-local means only, time smoothing only): the identity judge's share of frames taken for the
reference's person, the cosine to the reference, luma detail / colour noise / frame change as ratios
to held-out corpus clips, and the mean absolute difference to the reference (8-bit levels). ``--png``
draws reference | frames 0, 5, 10, 15 for each clip, raw and cleaned. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from model.corpus.cache import SegmentCache
from model.corpus.stills import Stills
from model import defaults
from model.diffusion.checkpoint import load_model
from model.diffusion.generate import build_guidance, generate_av
from model.evaluation.fidelity import ratios, statistics
from model.evaluation.identity import IdentityJudge
from model.postfilter import TEMPORAL, postfilter, smooth_in_time
from model.talking_head import WEIGHTS_DIR

HOME = Path("~/.cache/textcall/corpus").expanduser()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="a weights folder (diffusion/, portrait/)")
    parser.add_argument("--diffusion", type=Path, default=None, help="a diffusion folder instead of WEIGHTS/diffusion")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--faces", choices=("judge", "portrait"), default="judge")
    parser.add_argument("--stills", type=Path, default=HOME / "stills-judge")
    parser.add_argument("--cache", type=Path, default=HOME / "cache64", help="corpus cache: its test split is the reference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    net, config = load_model(args.diffusion or args.weights / "diffusion")
    judge = IdentityJudge.load(WEIGHTS_DIR / "identity")
    rng = np.random.default_rng(args.seed)
    if args.faces == "judge":
        stills = Stills.load(args.stills)
        picks = rng.choice(len(stills), size=args.clips, replace=False)
        faces = [stills.images[i] for i in picks]
        genders = [int(stills.gender[i]) for i in picks]
    else:
        from model.portrait.sample import PortraitModel

        portrait = PortraitModel.load(args.weights / "portrait")
        genders = [k % 2 for k in range(args.clips)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            faces = [portrait.sample(("A man is talking", "A woman is talking")[g], seed=args.seed + k, sampler=defaults.FACE_SAMPLER,
                                     steps=defaults.FACE_STEPS, cfg_scale=defaults.FACE_CFG)[0]
                     for k, g in enumerate(genders)]
    raw, began = [], time.perf_counter()
    for k, (face, gender) in enumerate(zip(faces, genders)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            stack = build_guidance(net, config, caption=1 + gender, reference=face)
            video, _ = generate_av(stack, steps=args.steps, seed=args.seed + k)
        raw.append(video)
    seconds = (time.perf_counter() - began) / len(raw)
    test = SegmentCache(args.cache, split="test")
    corpus = [test[i].video.transpose(0, 2, 3, 1) for i in range(min(32, len(test)))]
    base = statistics(corpus)
    variants = {
        "raw": raw,
        "non-local means + time": [postfilter(v) for v in raw],
        "time smoothing only": [smooth_in_time(v, TEMPORAL) for v in raw],
    }
    if (args.weights / "restore" / "config.json").is_file():  # the receiver's clean-up when a face is copied
        from model.restore.restorer import Restorer

        restorer = Restorer.load(args.weights / "restore")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            variants["time + restorer (default)"] = [restorer.restore(smooth_in_time(v, TEMPORAL), f) for v, f in zip(raw, faces)]
    print(f"\n{args.clips} one-second clips, DPM++-{args.steps}, {seconds:.1f} s each; references: {args.faces}; weights {args.diffusion or args.weights}")
    print(f"{'variant':<26} {'same person':>11} {'cosine':>7} {'detail':>7} {'colour':>7} {'change':>7} {'|x - ref|':>9}")
    for name, clips in variants.items():
        same, cos, diff = [], [], []
        for face, video in zip(faces, clips):
            c = judge.same_as_first(np.concatenate([face[None], video]))[1:]
            same.append(float((c >= judge.threshold).mean()))
            cos.append(float(c.mean()))
            diff.append(float(np.abs(video.astype(np.float32) - face.astype(np.float32)).mean()))
        r = ratios(statistics(clips), base)
        print(f"{name:<26} {np.mean(same):>11.3f} {np.mean(cos):>7.3f} {r['luma detail']:>7.2f} {r['colour noise']:>7.2f} "
              f"{r['frame change']:>7.2f} {np.mean(diff):>9.1f}")
    if args.png:
        from model.media import image_grid

        rows = []
        cleaned = variants.get("time + restorer (default)", variants["non-local means + time"])
        for face, video, clean in zip(faces, raw, cleaned):
            rows.append(np.concatenate([face[None], video[[0, 5, 10, 15]], clean[[0, 5, 10, 15]]]))
        image_grid(np.concatenate(rows), args.png, columns=9, scale=2)
        print(f"picture: {args.png} (reference | raw frames 0, 5, 10, 15 | cleaned)")


if __name__ == "__main__":
    main()
