"""``textcall eval model``: the generator on held-out sentences, judged per input mode."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model import defaults
from model.evaluation.modes import MODES

DEFAULT_CORPUS = Path("~/.cache/textcall/corpus/grid-synth")


def register_eval_model(subparsers) -> None:
    sub = subparsers.add_parser(
        "model",
        help="generate clips for held-out sentences and measure caption adherence, lip sync and speed",
        description=(
            "Generate --clips clips (input modes in turn) for GRID sentences that are not in the corpus,\n"
            "then measure caption adherence (face-gender judge), lip sync (SyncNet offset/confidence and\n"
            "the model-free motion/envelope lag), whether audio generated without speech text has a\n"
            "speech-shaped loudness envelope, and generation time per second of output, with held-out\n"
            "corpus clips as the reference. Writes OUT/eval.json, eval.md, contact_sheet.png and clips/."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--model", default="default", help="'default', a weights folder, or 'stub' (default %(default)s)")
    sub.add_argument("--out", type=Path, default=Path("eval-out"), help="output folder (default %(default)s)")
    sub.add_argument("--clips", type=int, default=32, help="generated clips (default %(default)s)")
    sub.add_argument("--modes", default=",".join(MODES), help="comma-separated input modes (default: all)")
    sub.add_argument("--reference-clips", type=int, default=16, help="held-out corpus clips (default %(default)s)")
    sub.add_argument("--envelope-reference", type=int, default=48,
                     help="held-out one-second segments, cut as for training, that set the speech-like bar for no-text audio (default %(default)s)")
    sub.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus root (default %(default)s)")
    sub.add_argument("--judge", type=Path, default=None, help="gender classifier folder (default: model/weights/gender)")
    sub.add_argument("--syncnet", type=Path, default=None, help="SyncNet folder (default: model/weights/syncnet)")
    sub.add_argument("--style-image", type=Path, default=None, help="image for the style modes (default: a corpus face)")
    defaults.add_generation_flags(sub)
    sub.add_argument("--device", default="cpu")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.add_argument("--seed", type=int, default=0)
    sub.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from model.evaluation.suite import EvalConfig, run_eval
    from model.pipeline import load_generator
    from model.talking_head import WEIGHTS_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = args.corpus.expanduser()
    try:
        config = EvalConfig(clips=args.clips, modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
                            reference_clips=args.reference_clips, envelope_reference=args.envelope_reference, seed=args.seed)
        if not corpus.is_dir():
            raise FileNotFoundError(f"{corpus}: no corpus (make one with `textcall corpus synth`)")
        judge = args.judge or WEIGHTS_DIR / "gender"
        syncnet = args.syncnet or (WEIGHTS_DIR / "syncnet" if (WEIGHTS_DIR / "syncnet" / "config.json").is_file() else None)
        style = args.style_image or (_corpus_face(corpus, args.out) if any(m.startswith("style") for m in config.modes) else None)
        settings = None if args.model == "stub" else defaults.generation_settings(args)
        generator = load_generator(args.model, args.device, settings)
        report = run_eval(generator, args.out, corpus=corpus, judge=judge, syncnet=syncnet, style_image=style, config=config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"textcall eval model: {exc}", file=sys.stderr)
        return 2
    from model.evaluation.suite import markdown

    print(markdown(report["summary"]))
    print(f"written to {args.out}")
    return 0


def _corpus_face(corpus: Path, out: Path) -> Path:
    """A still of a corpus speaker, upscaled, as the style image (what a gallery would hold)."""
    import cv2

    from model.evaluation.suite import reference_clips

    clips = reference_clips(corpus, 1)
    if not clips:
        raise FileNotFoundError(f"{corpus}: no test-split clip to take a style image from")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "style.png"
    face = cv2.resize(clips[0][0][0], (192, 192), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    return path


CORPUS_HOME = Path("~/.cache/textcall/corpus")


def default_caches(size: int) -> list[Path]:
    """The corpus caches at ``size`` pixels that exist: cacheSIZE and cacheSIZE-s1 (``textcall corpus prepare``)."""
    found = [c for c in (CORPUS_HOME / f"cache{size}", CORPUS_HOME / f"cache{size}-s1") if (c.expanduser() / "index.json").is_file()]
    if not found:
        raise FileNotFoundError(f"no corpus cache of {size}px clips at {CORPUS_HOME}/cache{size}: make one with "
                                f"`textcall corpus synth && textcall corpus prepare --size {size} --out {CORPUS_HOME}/cache{size}`")
    return [c.expanduser() for c in found]


def register_eval_calls(subparsers) -> None:
    sub = subparsers.add_parser(
        "calls",
        help="whole calls of mixed utterances: one face per call (identity), fidelity, sync, speed",
        description=(
            "Say --utterances everyday sentences (outside the corpus grammar) in mixed modes into each of\n"
            "--calls calls (the last --style-calls start with a style image), then measure: the share of each\n"
            "call's frames the face-identity judge takes for the call's first person (with the judge's\n"
            "calibration on held-out corpus clips beside it); a two-sample classifier between the calls'\n"
            "frames and held-out corpus frames, split by clip and by person (no call's person or corpus\n"
            "speaker of its test half seen in training: the bar's; half the calls train it, so use 4 or more),\n"
            "and detail / colour noise / frame change against the corpus;\n"
            "the same two-sample test on --faces faces drawn for new calls alone; lip sync and caption\n"
            "adherence; seconds per output second, the one-off face apart. Writes OUT/eval.json, eval.md,\n"
            "callN_sheet.png (one per call), faces.png and calls/*.mp4."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--model", default="default", help="'default', a weights folder, or 'stub' (default %(default)s)")
    sub.add_argument("--out", type=Path, default=Path("eval-calls"), help="output folder (default %(default)s)")
    sub.add_argument("--calls", type=int, default=4, help="calls (default %(default)s)")
    sub.add_argument("--utterances", type=int, default=5, help="utterances per call (default %(default)s)")
    sub.add_argument("--style-calls", type=int, default=1, help="calls that start with a style image (default %(default)s)")
    sub.add_argument("--faces", type=int, default=32, help="faces drawn alone for their own two-sample test, 0 = none (default %(default)s)")
    sub.add_argument("--reference-clips", type=int, default=64, help="held-out corpus clips (default %(default)s)")
    sub.add_argument("--caches", default=None, help="corpus caches whose test splits are the reference, comma-separated, at the\n"
                     "output size (default: ~/.cache/textcall/corpus/cacheSIZE and cacheSIZE-s1, those that exist)")
    sub.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus whose held-out clips are the lip-sync reference\n(default %(default)s)")
    sub.add_argument("--identity", type=Path, default=None, help="identity judge folder (default: model/weights/identity)")
    sub.add_argument("--judge", type=Path, default=None, help="gender classifier folder (default: model/weights/gender)")
    sub.add_argument("--syncnet", type=Path, default=None, help="SyncNet folder (default: model/weights/syncnet)")
    sub.add_argument("--sync-judge", type=Path, default=None,
                     help="a second SyncNet, not the lip-sync network's training expert, whose verdicts are reported\n"
                          "beside (default: model/weights/syncnet-judge; 'none' to skip)")
    sub.add_argument("--no-spoken-references", dest="spoken_references", action="store_false",
                     help="skip the second sync reference: corpus people with true mouths saying the calls' own\n"
                          "sentences in the calls' voices (a few seconds per sentence)")
    defaults.add_generation_flags(sub)
    sub.add_argument("--device", default="cpu")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.add_argument("--seed", type=int, default=0)
    sub.set_defaults(run=_run_calls)


def _sync_judge(flag: Path | None) -> Path | None:
    """``--sync-judge``: the folder given, None for 'none', else the shipped second judge when there is one."""
    from model.talking_head import WEIGHTS_DIR

    if flag is not None:
        if str(flag) == "none":
            return None
        if not (flag.expanduser() / "config.json").is_file():
            raise FileNotFoundError(f"--sync-judge {flag}: no SyncNet there")
        return flag.expanduser()
    default = WEIGHTS_DIR / "syncnet-judge"
    return default if (default / "config.json").is_file() else None


def _run_calls(args: argparse.Namespace) -> int:
    import torch

    from model.evaluation.calls import CallEvalConfig, markdown, run_call_eval
    from model.pipeline import load_generator
    from model.talking_head import WEIGHTS_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = CallEvalConfig(calls=args.calls, utterances=args.utterances, style_calls=args.style_calls, faces=args.faces,
                                reference_clips=args.reference_clips, seed=args.seed, spoken_references=args.spoken_references)
        syncnet = args.syncnet or (WEIGHTS_DIR / "syncnet" if (WEIGHTS_DIR / "syncnet" / "config.json").is_file() else None)
        settings = None if args.model == "stub" else defaults.generation_settings(args)
        generator = load_generator(args.model, args.device, settings)
        if args.caches is None:
            caches = default_caches(getattr(generator, "output_size", 64))
        else:
            caches = [Path(c).expanduser() for c in args.caches.split(",") if c.strip()]
        missing = [str(c) for c in caches if not (c / "index.json").is_file()]
        if missing:
            raise FileNotFoundError(f"no corpus cache at {', '.join(missing)} (textcall corpus synth, then prepare)")
        corpus = args.corpus.expanduser()
        report = run_call_eval(generator, args.out, caches=caches, identity=args.identity or WEIGHTS_DIR / "identity",
                               gender_judge=args.judge or WEIGHTS_DIR / "gender", syncnet=syncnet,
                               corpus=corpus if corpus.is_dir() else None, config=config, sync_judge=_sync_judge(args.sync_judge))
    except (ValueError, FileNotFoundError) as exc:
        print(f"textcall eval calls: {exc}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"written to {args.out}")
    return 0
