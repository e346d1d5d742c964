"""Benchmark of a live call: how soon an utterance starts playing, and whether it plays without stalls.

    python tests/benchmarks/bench_live.py [--models stub,default] [--threads 2] [--lengths 1,4,15]
        [--stub-pace 0.5] [--device cpu] [--out DIR]

For each model and each utterance length (seconds of speech, approximately: the texts are picked to
be about that long), one utterance is said into a call (the call's one-off face drawn before, and
timed apart) and its chunks are taken as the generator hands them out (``Call.stream``). A player
that starts on the first chunk and plays in real time (``receiver.player.Timeline`` semantics: a
late chunk pauses sound and picture) is simulated on the chunk times. Printed per row:

- ``first``: seconds from the text's arrival to the first frame out (``time to first frame``);
- ``whole``: seconds to the last frame out, which is also when the first frame played before
  streaming (the receiver rendered the whole utterance first): the baseline, measured in the same run;
- ``chunk``: the median seconds between chunks after the first, i.e. one chunk's render time;
  the live-call bar is ``first <= chunk + 0.5`` (``met`` column);
- ``stalls`` and ``stalled``: count and seconds of playback stalls after the start;
- ``rtf``: seconds of generation per second of media (below 1: faster than real time).

Also writes ``live_latency.json`` and ``live_latency.png`` (time to first frame against utterance
length, streaming against whole-utterance) into ``--out``. Timings are printed, never asserted. The
network adds milliseconds on loopback (the receiver's journal has ``first_frame_ms`` per utterance,
from arrival to the first chunk, for a real call).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from model.clip import Request

# about 1, 4 and 15 s of espeak speech at textcall's rate (measured lengths are printed)
TEXTS = {
    1: "Hello there.",
    4: "Could you send me the slides before the meeting on Thursday, and the notes from last week?",
    15: ("Good morning, I hope you had a nice weekend with the family. The weather has been lovely "
         "here, we went for a long walk by the river and had lunch in the old town. On Monday I start "
         "the new project, so could you send me the slides before the meeting on Thursday? Thank you."),
}


def stub_text(seconds: float) -> str:
    from model.stub import SECONDS_PER_CHAR

    return "x" * max(1, round(seconds / SECONDS_PER_CHAR))


def simulate(chunks: list[tuple[float, float]]) -> tuple[int, float]:
    """Stalls of a player that starts on the first chunk: ``chunks`` = (time out, media seconds)."""
    if not chunks:
        return 0, 0.0
    clock = chunks[0][0]  # playback starts when the first chunk is out
    stalls, stalled = 0, 0.0
    for out, seconds in chunks:
        if out > clock + 1e-6:  # the chunk is late: the player waited for it
            stalls += 1
            stalled += out - clock
            clock = out
        clock += seconds
    return stalls, stalled


CAPTIONS = {"female": "A woman is talking", "male": "A man is talking"}


def measure(generator, text: str, call_id: str, warm_up: str, gender: str = "female") -> dict:
    """One utterance into a call whose face is drawn and whose chunk sizes have run once (``warm_up``:
    the first run of each tensor shape pays for its kernels, as a receiver's first call does)."""
    call = generator.open_call(call_id)
    t0 = time.perf_counter()
    list(call.stream(Request(caption=CAPTIONS[gender], text=warm_up, seed=1)))  # draws the call's face
    face_and_first = time.perf_counter() - t0
    start = time.perf_counter()
    outs = []
    for chunk in call.stream(Request(text=text, seed=2)):
        outs.append((time.perf_counter() - start, chunk.seconds))
    media = sum(s for _, s in outs)
    whole = outs[-1][0]
    stalls, stalled = simulate(outs)
    gaps = sorted(b[0] - a[0] for a, b in zip(outs, outs[1:]))
    chunk = gaps[len(gaps) // 2] if gaps else outs[0][0]  # one chunk's render time (the first's includes the voice)
    return {"first": outs[0][0], "whole": whole, "media": media, "chunks": len(outs), "chunk": chunk,
            "met": outs[0][0] <= chunk + 0.5, "stalls": stalls, "stalled": stalled, "rtf": whole / media,
            "warm_up": face_and_first}


def load(name: str, device: str, pace: float, voice: str | None):
    from model.pipeline import load_generator

    if name == "stub":
        return load_generator("stub", pace=pace)
    return load_generator(name, device, **({"voice": voice} if voice else {}))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        x = [r["media"] for r in mine]
        ax.plot(x, [r["first"] for r in mine], "o-", label=f"{model}: streamed (first chunk)")
        ax.plot(x, [r["whole"] for r in mine], "s--", label=f"{model}: whole utterance first")
    ax.set_xlabel("utterance length (s of speech)")
    ax.set_ylabel("text arrival to first frame (s)")
    ax.set_title("textcall: time to first frame")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="stub,default", help="comma list: stub, default or a weights folder")
    parser.add_argument("--lengths", default="1,4,15", help="seconds of speech per utterance (1, 4, 15)")
    parser.add_argument("--stub-pace", type=float, default=0.5, help="the stub's seconds of work per media second")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("bench-live"))
    parser.add_argument("--voice", default=None, help="the default model's voice (espeak, piper, mixed; default: its default)")
    parser.add_argument("--gender", choices=("female", "male"), default="female", help="the call's caption")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    rows = []
    print(f"{'model':<10}{'speech s':>9}{'chunks':>7}{'first s':>9}{'chunk s':>8}{'met':>5}{'whole s':>9}{'ratio':>7}"
          f"{'stalls':>7}{'stalled s':>10}{'rtf':>7}")
    for name in args.models.split(","):
        generator = load(name, args.device, args.stub_pace, args.voice)
        for seconds in lengths:
            text = stub_text(seconds) if name == "stub" else TEXTS[seconds]
            warm = stub_text(4) if name == "stub" else TEXTS[4]
            r = {"model": name, "device": args.device, "target": seconds, "voice": args.voice, "gender": args.gender, **measure(generator, text, f"bench-{seconds}", warm, args.gender)}
            rows.append(r)
            print(f"{name:<10}{r['media']:>9.2f}{r['chunks']:>7}{r['first']:>9.2f}{r['chunk']:>8.2f}"
                  f"{'yes' if r['met'] else 'no':>5}{r['whole']:>9.2f}"
                  f"{r['whole'] / r['first']:>7.1f}{r['stalls']:>7}{r['stalled']:>10.2f}{r['rtf']:>7.2f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live_latency.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, args.out / "live_latency.png")
    print(f"wrote {args.out / 'live_latency.json'} and {args.out / 'live_latency.png'}")


if __name__ == "__main__":
    main()
