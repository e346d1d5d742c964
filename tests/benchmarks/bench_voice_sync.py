"""Benchmark: does lip sync hold with the voices users hear? SyncNet on calls made with each default voice.

    python tests/benchmarks/bench_voice_sync.py [--voice mixed] [--utterances 8] [--threads 2] [--out bench-voice-sync.json]

For each gender, one call (the default model, ``--size`` as ``textcall receive``) says ``--utterances``
everyday sentences (``textcall eval calls``' list, outside the corpus grammar) with the caption "A man is
talking" / "A woman is talking", so the call speaks with that gender's default voice (``--voice mixed``:
Piper's joe for men, Kokoro's female voices for women). The shipped SyncNet judge measures each clip's
offset (within one frame?) and confidence (LSE-C); beside them, the same judge on held-out corpus clips at
the same size (the reference the sync bars compare with). The judge and the lip-sync network were
trained on the corpus's espeak-ng speech. Printed and written as JSON, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", default="mixed", help="voice of the calls (default %(default)s)")
    parser.add_argument("--utterances", type=int, default=8, help="utterances per gender, 0: the reference only (default %(default)s)")
    parser.add_argument("--genders", default="female,male", help="comma-separated (default %(default)s)")
    parser.add_argument("--size", type=int, choices=(64, 256), default=None, help="output size (default: the model's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference-clips", type=int, default=16, help="held-out corpus clips (default %(default)s)")
    parser.add_argument("--corpus", type=Path, default=Path("~/.cache/textcall/corpus/grid-synth"),
                        help="corpus whose held-out clips are the reference (a corpus spoken by the voice under test:\n"
                        "textcall corpus synth --voice kokoro) (default %(default)s)")
    parser.add_argument("--syncnet", type=Path, default=None, help="the judge (default: the shipped model/weights/syncnet)")
    parser.add_argument("--weights", default="default", help="the model: default (shipped) or a weights folder (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench-voice-sync.json"))
    args = parser.parse_args()

    import torch

    from model.clip import Request
    from model.defaults import GeneratorSettings
    from model.evaluation.calls import CAPTIONS, EVERYDAY
    from model.evaluation.suite import _sync, reference_clips
    from model.pipeline import load_generator
    from model.talking_head import WEIGHTS_DIR

    torch.set_num_threads(args.threads)
    syncnet = args.syncnet.expanduser() if args.syncnet else WEIGHTS_DIR / "syncnet"
    generator = load_generator(args.weights, "cpu", GeneratorSettings(voice=args.voice, size=args.size))
    rows = []
    for g, gender in enumerate(args.genders.split(",")):
        call = generator.open_call(f"voice-sync-{gender}")
        for u in range(args.utterances):
            text = EVERYDAY[(g * args.utterances + u) % len(EVERYDAY)]
            t0 = time.perf_counter()
            clip = call.say(Request(caption=CAPTIONS[gender], text=text, seed=1000 * g + u, session=f"voice-sync-{gender}"))
            row = {"gender": gender, "text": text, "speaker": clip.info.get("speaker"), "seconds": round(clip.seconds, 2),
                   "generation_s": round(time.perf_counter() - t0, 1), **_sync(clip.video, clip.audio, syncnet, 15)}
            rows.append(row)
            print(f"{gender:<6} {str(row['speaker']):<22} offset {row.get('offset')!s:>3}  LSE-C {row.get('confidence')}  "
                  f"{row['seconds']:.1f} s in {row['generation_s']:.0f} s  {text!r}", flush=True)
    size = generator.output_size
    reference = [_sync(v, a, syncnet, 15) for v, a in reference_clips(args.corpus.expanduser(), args.reference_clips, size=size)]
    summary = {"size": size, "voice": args.voice, "weights": args.weights, "syncnet": str(syncnet), "corpus": str(args.corpus), "reference_confidence": round(float(np.mean([r["confidence"] for r in reference])), 4),
               "reference_offset_within_1": round(float(np.mean([abs(r["offset"]) <= 1 for r in reference])), 4)}
    for gender in args.genders.split(",") if rows else ():
        mine = [r for r in rows if r["gender"] == gender]
        summary[gender] = {"speakers": sorted({str(r["speaker"]) for r in mine}), "clips": len(mine),
                           "offset_within_1": round(float(np.mean([abs(r["offset"]) <= 1 for r in mine])), 4),
                           "confidence": round(float(np.mean([r["confidence"] for r in mine])), 4)}
    print(json.dumps(summary, indent=1))
    args.out.write_text(json.dumps({"summary": summary, "clips": rows, "reference": reference}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
