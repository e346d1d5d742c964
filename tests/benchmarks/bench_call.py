"""Benchmark of a call: seconds of generation per second of talking head, the one-off face apart,
for the default generator against a baseline, measured in the same run on the same utterances.

    python tests/benchmarks/bench_call.py [--weights model/weights] [--baseline DIR] [--threads 2]
        [--utterances 3] [--rows call-64,call,paper]

Each row says one utterance after another (about 3 s of speech each, a caption on the first) into one
call and reports the median over the utterances of: voice, sampling, clean-up (the restorer with a
call's face, non-local means without), lip sync, the upscaler and total seconds, and total per output
second; the one-off face (drawn when the call's first utterance arrives, and upscaled once) is timed
on its own. Rows:

- ``call-64``: ``--weights`` with one face per call at the joint model's 64 pixels (``--size 64``: the
  default before the upscaler);
- ``call``: ``--weights`` with one face per call (the default: the reference-conditioned joint model,
  then the upscaler to 256 when the weights have one);
- ``paper``: ``--weights`` with ``--face paper`` (no reference: every chunk invents its face);
- ``baseline``: ``--baseline`` as the generator was before one face per call (its own defaults,
  ``precision`` fp32 as it was then); give ``--baseline`` to get it.
- ``call-fp32``: ``call`` with the networks in float32.

The ratio column divides each row's seconds per output second by the first row's (so with the default
rows, ``call`` against ``call-64`` is what the upscaler adds). Timings are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from model.clip import Request
from model.talking_head import WEIGHTS_DIR, TalkingHead, TalkingHeadSettings

TEXTS = (
    "Good morning, I hope you had a nice weekend with the family.",
    "Could you send me the slides before the meeting on Thursday?",
    "The weather has been lovely here, we went for a long walk.",
    "Let me check my calendar and call you back this afternoon.",
)


def run_row(name: str, weights: Path, settings: TalkingHeadSettings, utterances: int, device: str = "cpu") -> dict:
    head = TalkingHead.from_weights(weights, settings=settings, device=device)
    head.generate(Request(text="warm up", caption="A woman is talking", session="warm"))  # first-call allocations
    call = head.open_call(f"bench-{name}")
    runs, face_s = [], 0.0
    for k in range(utterances):
        start = time.perf_counter()
        clip = call.say(Request(text=TEXTS[k % len(TEXTS)], caption="A woman is talking" if k == 0 else "", seed=k))
        total = time.perf_counter() - start
        timings = clip.info.get("timings", {})
        face_s += timings.get("face", 0.0)
        clean_up = timings.get("postfilter", 0.0) + timings.get("restore", 0.0)  # whichever clean-up ran
        runs.append({**timings, "clean_up": clean_up, "total": total - timings.get("face", 0.0), "seconds": clip.seconds})
    keys = ("voice", "sampling", "clean_up", "lipsync", "upscale", "total", "seconds")
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
    med["per_s"] = statistics.median(r["total"] / r["seconds"] for r in runs)
    med["face"] = face_s
    med["size"] = clip.video.shape[1]
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--baseline", type=Path, default=None, help="weights folder of the generator before (adds a row)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (a GPU row: run it again with --device cuda)")
    parser.add_argument("--utterances", type=int, default=3)
    parser.add_argument("--rows", default="call-64,call,paper", help="rows besides baseline: call-64, call, paper, call-fp32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name in [r.strip() for r in args.rows.split(",") if r.strip()]:
        settings = {"call": TalkingHeadSettings(), "call-64": TalkingHeadSettings(size=64), "paper": TalkingHeadSettings(face="paper"),
                    "call-fp32": TalkingHeadSettings(precision="fp32")}[name]
        rows.append((name, run_row(name, args.weights, settings, args.utterances, args.device)))
    if args.baseline is not None:
        rows.append(("baseline", run_row("baseline", args.baseline, TalkingHeadSettings(precision="fp32"), args.utterances,
                                         args.device)))

    first = rows[0][1]["per_s"]
    print(f"\n{args.utterances} utterances per call; {args.device}, {args.threads} torch threads; weights {args.weights}"
          + (f", baseline {args.baseline}" if args.baseline else ""))
    print(f"{'row':<10} {'size':>4} {'speech s':>8} {'voice':>6} {'sampling':>9} {'clean-up':>8} {'lipsync':>8} {'upscale':>8} "
          f"{'total':>7} {'s/out s':>8} {'ratio':>6} {'face (once)':>12}")
    for name, m in rows:
        print(f"{name:<10} {m['size']:>4} {m['seconds']:>8.2f} {m['voice']:>6.2f} {m['sampling']:>9.2f} {m['clean_up']:>8.2f} "
              f"{m['lipsync']:>8.2f} {m['upscale']:>8.2f} {m['total']:>7.2f} {m['per_s']:>8.2f} {m['per_s'] / first:>6.2f} "
              f"{m['face']:>12.2f}")


if __name__ == "__main__":
    main()
