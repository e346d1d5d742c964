"""``textcall train captions`` and ``textcall train attributes`` (rows of ``model.train_cli.TRAINERS``):
the caption encoder that reads free-form captions, and the attribute judge that checks the faces.

Only argparse at import; torch and the trainers load in the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.train_cli import set_threads


def register_captions(subparsers) -> None:
    sub = subparsers.add_parser(
        "captions",
        help="train the caption encoder (free-form captions -> a description vector)",
        description=(
            "Train the caption encoder (model/describe/encoder.py) on captions generated from the\n"
            "synthesizer's attributes in many wordings (model/describe/wording.py); scores captions in\n"
            "sentence frames and attribute combinations it never saw. Minutes on one CPU thread.\n"
            "Writes OUT/model.safetensors, config.json (with its vocabulary), loss.csv and a model card."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--out", required=True, metavar="DIR", help="output folder")
    sub.add_argument("--steps", type=int, default=3000, help="optimisation steps (default %(default)s)")
    sub.add_argument("--captions", type=int, default=60_000, help="generated training captions (default %(default)s)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--no-progress", action="store_true")

    def run(args: argparse.Namespace) -> int:
        from model.describe.train import EncoderTrainConfig, train_encoder

        set_threads(args)
        try:
            last = train_encoder(EncoderTrainConfig(steps=args.steps, captions=args.captions, seed=args.seed,
                                                    save_every=min(1000, args.steps)), args.out, progress=not args.no_progress)
        except ValueError as exc:
            print(f"textcall train captions: {exc}", file=sys.stderr)
            return 2
        print(f"caption encoder: held-out captions read exactly {last['exact']:.3f} after {last['step']} steps; written to {args.out}")
        return 0

    sub.set_defaults(run=run)


def register_attributes(subparsers) -> None:
    sub = subparsers.add_parser(
        "attributes",
        help="train the attribute judge that `textcall eval captions` uses to check faces",
        description=(
            "Train a small CNN with one head per attribute (gender, hair, skin, glasses, facial hair,\n"
            "hair style, shirt) on the judge stills (`textcall corpus stills --purpose judge`: people no\n"
            "generator saw), the last tenth of their people held out; with --cache and --corpus it is also\n"
            "scored on the video corpus's test frames. The evaluation's judge, never a generator's loss."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--data", required=True, metavar="DIR", help="a judge stills folder")
    sub.add_argument("--out", required=True, metavar="DIR", help="output folder")
    sub.add_argument("--cache", type=Path, default=None, metavar="DIR", help="corpus segment cache (scores its test frames)")
    sub.add_argument("--corpus", type=Path, default=None, metavar="DIR", help="the synthetic corpus the cache was made from")
    sub.add_argument("--steps", type=int, default=2500, help="optimisation steps (default %(default)s)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--no-progress", action="store_true")

    def run(args: argparse.Namespace) -> int:
        from model.describe.judge import JudgeTrainConfig, train_judge

        set_threads(args)
        try:
            m = train_judge(args.data, args.out, cache=args.cache, corpus=args.corpus,
                            train=JudgeTrainConfig(steps=args.steps, seed=args.seed), progress=not args.no_progress)
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train attributes: {exc}", file=sys.stderr)
            return 2
        held = ", ".join(f"{k} {v:.3f}" for k, v in m["heldout_accuracy"].items())
        print(f"attribute judge: held-out people {held} ({m['seconds']} s); written to {args.out}")
        return 0

    sub.set_defaults(run=run)


def register_eval_captions(subparsers) -> None:
    from model import defaults

    sub = subparsers.add_parser(
        "captions",
        help="faces from held-out free-form captions, judged per attribute (caption adherence)",
        description=(
            "Read --captions held-out captions (sentence frames and attribute combinations the caption\n"
            "encoder never saw) with the caption encoder, draw one face from each with the portrait model\n"
            "(the receiver's face sampler) at each --cfg guidance scale, and judge gender, hair, skin,\n"
            "glasses, facial hair, hair style and shirt with the attribute judge; beside it the judge's\n"
            "accuracy on real drawn people. Writes OUT/eval.json, eval.md, faces_cfg*.png, captions.txt."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    weights_dir = Path(__file__).resolve().parent.parent / "weights"  # model/weights (no torch import here)
    sub.add_argument("--weights", type=Path, default=weights_dir, help="weights folder with portrait/, captions/ and attributes/\n(default %(default)s)")
    sub.add_argument("--generator", choices=("portrait", "joint"), default="portrait",
                     help="what draws each face: portrait (the call's face, the receiver's path) or joint: the joint\n"
                     "audio-video model alone, one caption-only chunk (no reference, no speech), its middle\n"
                     "frame: what the joint model learnt of descriptions (default %(default)s)")
    sub.add_argument("--portrait", type=Path, default=None, help="portrait model folder (default WEIGHTS/portrait)")
    sub.add_argument("--diffusion", type=Path, default=None, help="with --generator joint: the joint model (default WEIGHTS/diffusion)")
    sub.add_argument("--classifier", type=Path, default=None,
                     help="with --generator joint: guide by this noisy classifier (Eq. 8) instead of the network's\n"
                     "caption input (the network gets the null caption)")
    sub.add_argument("--classifier-scale", type=float, default=10.0, help="with --classifier (default %(default)s)")
    sub.add_argument("--encoder", type=Path, default=None, help="caption encoder folder (default WEIGHTS/captions)")
    sub.add_argument("--judge", type=Path, default=None, help="attribute judge folder (default WEIGHTS/attributes)")
    sub.add_argument("--out", type=Path, default=Path("eval-captions"), help="output folder (default %(default)s)")
    sub.add_argument("--captions", type=int, default=60, help="held-out captions (default %(default)s)")
    sub.add_argument("--cfg", default=f"1,{defaults.FACE_CFG:g}", help="guidance scales, comma-separated (default %(default)s)")
    sub.add_argument("--steps", type=int, default=None,
                     help=f"sampler steps (default {defaults.FACE_STEPS} {defaults.FACE_SAMPLER} for the portrait model, "
                     f"{defaults.SAMPLER_STEPS[defaults.SAMPLER]} {defaults.SAMPLER} for the joint)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--no-progress", action="store_true")

    def run(args: argparse.Namespace) -> int:
        from model.describe.encoder import CaptionEncoder
        from model.describe.evaluate import CaptionEvalConfig, JointFaces, markdown, run_caption_eval
        from model.describe.judge import AttributeJudge
        from model.portrait.sample import PortraitModel

        set_threads(args)
        try:
            joint = args.generator == "joint"
            config = CaptionEvalConfig(captions=args.captions, cfg_scales=tuple(float(c) for c in args.cfg.split(",") if c.strip()),
                                       sampler=defaults.SAMPLER if joint else defaults.FACE_SAMPLER,
                                       steps=args.steps or (defaults.SAMPLER_STEPS[defaults.SAMPLER] if joint else defaults.FACE_STEPS),
                                       seed=args.seed)
            if joint:
                portrait = JointFaces.load(args.diffusion or args.weights / "diffusion", args.classifier,
                                           classifier_scale=args.classifier_scale if args.classifier else 0.0,
                                           sampler=config.sampler, steps=config.steps)
            else:
                portrait = PortraitModel.load(args.portrait or args.weights / "portrait")
            if not joint and not portrait.config.describes:
                raise ValueError(f"{args.portrait or args.weights / 'portrait'} draws from the paper's two captions only "
                                 "(train one with `textcall train portrait --describe`)")
            encoder = CaptionEncoder.load(args.encoder or args.weights / "captions")
            judge = AttributeJudge.load(args.judge or args.weights / "attributes")
            report = run_caption_eval(portrait, encoder, judge, args.out, config, progress=not args.no_progress)
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall eval captions: {exc}", file=sys.stderr)
            return 2
        print(markdown(report))
        print(f"written to {args.out}")
        return 0

    sub.set_defaults(run=run)
