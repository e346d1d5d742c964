"""Command-line plugins of the lip-sync package (argparse only at import; torch inside handlers).

* ``textcall lipsync convert IN.pth OUT_DIR [--kind wav2lip|syncnet]`` and
  ``textcall lipsync export DIR OUT.pth`` (entry point ``lipsync``);
* ``textcall train syncnet`` / ``textcall train lipsync`` (rows of ``model.train_cli.TRAINERS``);
* ``textcall eval sync VIDEO`` (a row of ``model.eval_cli.EVALUATORS``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_CACHE = "~/.cache/textcall/corpus/cache64"
SHIPPED_SYNCNET = Path(__file__).resolve().parents[1] / "weights" / "syncnet"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lipsync", help="Wav2Lip tools (official checkpoints in and out)",
        description="Tools for the Wav2Lip lip-sync networks: official checkpoints in (convert) and out (export).",
    )
    sub = parser.add_subparsers(dest="lipsync_command", metavar="WHAT")
    conv = sub.add_parser(
        "convert", help="official wav2lip.pth / wav2lip_gan.pth / lipsync_expert.pth -> safetensors folder",
        description=(
            "Convert an official Wav2Lip checkpoint ({'state_dict': {'module.<key>': ...}}) into\n"
            "OUT_DIR/model.safetensors + config.json. The file is read with torch.load(weights_only=True)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    conv.add_argument("checkpoint", metavar="IN.pth")
    conv.add_argument("out", metavar="OUT_DIR")
    conv.add_argument("--kind", choices=("wav2lip", "syncnet"), default=None,
                      help="network in the file (default: guessed from its keys)")
    conv.set_defaults(run=_run_convert)
    exp = sub.add_parser(
        "export", help="safetensors folder -> official wav2lip.pth / lipsync_expert.pth (the reverse of convert)",
        description=(
            "Write a lip-sync model folder (model.safetensors + config.json, from `textcall train syncnet`,\n"
            "`textcall train lipsync` or `textcall lipsync convert`) as an official Wav2Lip checkpoint:\n"
            "torch.save of {'state_dict': ..., 'optimizer': None, 'global_step': N, 'global_epoch': 0},\n"
            "float32. Rudrabha/Wav2Lip loads it as its own: a generator with inference.py --checkpoint_path\n"
            "or wav2lip_train.py --checkpoint_path (keys 'module.<key>', as in the released wav2lip.pth), an\n"
            "expert with wav2lip_train.py --syncnet_checkpoint_path or color_syncnet_train.py (bare keys, as\n"
            "that script saves them). global_step is the run's step when DIR holds a training state, else 0.\n"
            "Only full-width networks (--preset official, or converted official weights) fit the official\n"
            "code: a small or tiny model is refused. `textcall lipsync convert` reads the file back."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    exp.add_argument("folder", metavar="DIR", help="model folder: model.safetensors + config.json")
    exp.add_argument("out", metavar="OUT.pth",
                     help="file to write; an existing folder gets the released name\n(wav2lip.pth or lipsync_expert.pth)")
    exp.set_defaults(run=_run_export)

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(run=show_help)


def _run_convert(args: argparse.Namespace) -> int:
    from model.lipsync.convert import ConversionError, convert  # noqa: PLC0415

    try:
        folder, config = convert(args.checkpoint, args.out, kind=args.kind)
    except (ConversionError, FileNotFoundError) as exc:
        print(f"textcall lipsync convert: {exc}", file=sys.stderr)
        return 2
    print(f"{config.kind} ({config.name}) -> {folder}/model.safetensors + config.json")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from model.lipsync.export import ExportError, export  # noqa: PLC0415

    try:
        path, config = export(args.folder, args.out)
    except (ExportError, FileNotFoundError) as exc:
        print(f"textcall lipsync export: {exc}", file=sys.stderr)
        return 2
    print(f"{config.kind} ({config.name}) -> {path} (official Wav2Lip format)")
    return 0


# -- training --------------------------------------------------------------------------------------
def _train_args(sub: argparse.ArgumentParser, *, steps: int, batch: int, save_every: int, grad_clip: float,
                weight_decay: float) -> None:
    sub.add_argument("--data", default=DEFAULT_CACHE, metavar="DIR", help="corpus segment cache (default %(default)s)")
    sub.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder (resumed if it holds a run)")
    sub.add_argument("--preset", choices=("official", "small", "tiny"), default=None,
                     help="architecture: official (full width, GPU) or small (CPU); default: the run's own, else small")
    sub.add_argument("--steps", type=int, default=steps, help="total optimisation steps (default %(default)s)")
    sub.add_argument("--batch-size", type=int, default=batch, help="(default %(default)s)")
    sub.add_argument("--lr", type=float, default=None, help="AdamW lr (default: 1e-4 official; small: 1e-3 syncnet, 5e-4 lipsync)")
    sub.add_argument("--ema-decay", type=float, default=0.0, help="EMA of the weights, 0 = off (default %(default)s)")
    sub.add_argument("--weight-decay", type=float, default=weight_decay, help="AdamW weight decay (default %(default)s)")
    sub.add_argument("--grad-clip", type=float, default=grad_clip, help="gradient norm clip, 0 = off (default %(default)s)")
    sub.add_argument("--save-every", type=int, default=save_every, help="checkpoint + validation interval (default %(default)s)")
    sub.add_argument("--log-every", type=int, default=10, help="loss.csv interval (default %(default)s)")
    sub.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N training segments")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--init", default=None, metavar="DIR",
                     help="start a new run from these weights (a model folder, e.g. model/weights/lipsync);\n"
                          "its architecture unless --preset; ignored when --out already holds a run.\n"
                          "Give another --seed than the first run's to draw other batches")
    sub.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")


def register_train_syncnet(subparsers) -> None:
    sub = subparsers.add_parser(
        "syncnet", help="train Wav2Lip's SyncNet lip-sync expert (first)",
        description=(
            "Train the SyncNet_color expert: BCE on the cosine similarity of audio and lower-face\n"
            "embeddings for in-sync and off-sync 5-frame windows of the corpus cache's train split;\n"
            "the val split gives accuracy at every save. Writes OUT/model.safetensors + config.json,\n"
            "README.md, loss.csv, val.csv, loss.png and a resumable state: run again to resume."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    # measured on the synthetic corpus: with the gradient clipped at norm 1 the expert stayed at chance
    # for 3,000+ steps; unclipped (AdamW, weight decay 0.01, lr 1e-3) it left chance after ~400
    _train_args(sub, steps=6000, batch=32, save_every=250, grad_clip=0.0, weight_decay=0.01)
    sub.add_argument("--min-shift", type=int, default=2, help="off-sync windows at least this many frames away")
    sub.add_argument("--other-segment", type=float, default=1.0,
                     help="share of off-sync audio from another segment of the same speaker, the rest from the\n"
                          "same segment --min-shift+ frames away as Wav2Lip does (default %(default)s: on the\n"
                          "synthetic corpus this left chance level after ~600 steps, same-segment-only\n"
                          "negatives had not after 1500)")
    sub.set_defaults(run=lambda args: _train(args, "syncnet"))


def register_train_lipsync(subparsers) -> None:
    sub = subparsers.add_parser(
        "lipsync", help="train the Wav2Lip generator with a trained SyncNet expert",
        description=(
            "Train the Wav2Lip generator: L1 to the true frames plus the frozen expert's sync loss\n"
            "(weight --sync-weight) and, with --disc-weight, Wav2Lip's GAN variant: a visual quality\n"
            "discriminator on the mouths, trained beside it (its state in OUT/disc/).\n"
            "Needs --syncnet DIR from `textcall train syncnet`.\n"
            "Writes the same files as the syncnet trainer; run again to resume."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    _train_args(sub, steps=20_000, batch=8, save_every=100, grad_clip=1.0, weight_decay=0.0)
    sub.add_argument("--syncnet", required=True, metavar="DIR", help="trained expert folder (model.safetensors + config.json)")
    sub.add_argument("--sync-weight", type=float, default=0.03, help="weight of the expert's sync loss (default %(default)s)")
    sub.add_argument("--edge-weight", type=float, default=0.0,
                     help="L1 on the frames' horizontal and vertical differences too, with this weight:\n"
                     "sharper mouths than L1 alone (not in Wav2Lip; default %(default)s)")
    sub.add_argument("--disc-weight", type=float, default=0.0,
                     help="weight of the visual quality discriminator's loss (Wav2Lip's GAN variant: 0.07;\n"
                     "0 = no GAN, the default)")
    sub.add_argument("--disc-lr", type=float, default=1e-4, help="the discriminator's learning rate (default %(default)s)")
    sub.add_argument("--disc-warmup", type=int, default=0,
                     help="steps in which only the discriminator learns (default %(default)s)")
    sub.add_argument("--also", default=None, metavar="DIR[,DIR...]",
                     help="more segment caches to draw generator windows from, beside --data (for example\n"
                     "the corpus at 256 px: crops of sharp faces, for lip sync on upscaled frames);\n"
                     "validation then reads the last of them")
    sub.add_argument("--shares", default=None, metavar="S,S,...",
                     help="share of each batch from --data and each --also cache (default: equal)")
    sub.add_argument("--box-size", type=int, default=None, metavar="PX",
                     help="find each clip's face box on its frames brought down to PX (64: the receiver's\n"
                     "frames), so that a cache at 256 is cropped as its 64-pixel version is")
    sub.add_argument("--expert-size", type=int, default=0, metavar="PX",
                     help="the expert sees generated crops brought down to PX and back (its training\n"
                     "sharpness; ~61 for an expert trained on 64-pixel frames), 0 = as they are (default)")
    sub.set_defaults(run=lambda args: _train(args, "lipsync"))


def _train(args: argparse.Namespace, what: str) -> int:
    import torch  # noqa: PLC0415

    from model.lipsync.data import LipData, LipMix  # noqa: PLC0415
    from model.lipsync.train import TrainConfig, load_or_default_config, run_training  # noqa: PLC0415

    if args.threads:
        torch.set_num_threads(args.threads)
    kind = "wav2lip" if what == "lipsync" else "syncnet"
    out = Path(args.out).expanduser()
    try:
        config = load_or_default_config(out, kind, args.preset, args.init)
        lr = args.lr if args.lr is not None else (1e-4 if config.official else (1e-3 if kind == "syncnet" else 5e-4))
        train = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, lr=lr, ema_decay=args.ema_decay,
            weight_decay=args.weight_decay, grad_clip=args.grad_clip,
            save_every=args.save_every, log_every=args.log_every, seed=args.seed, init=args.init or "",
            **({"sync_weight": args.sync_weight, "edge_weight": args.edge_weight, "disc_weight": args.disc_weight,
                "disc_lr": args.disc_lr, "disc_warmup": args.disc_warmup, "expert_size": args.expert_size} if what == "lipsync"
               else {"min_shift": args.min_shift, "other_segment": args.other_segment}),
        )
        box = getattr(args, "box_size", None)
        caches = [args.data, *(c.strip() for c in (getattr(args, "also", None) or "").split(",") if c.strip())]
        parts = [LipData.from_cache(c, "train", limit=args.limit, box_size=box, progress=not args.no_progress)
                 for c in caches]
        data = parts[0]
        if len(parts) > 1 or getattr(args, "shares", None):
            shares = [float(v) for v in args.shares.split(",")] if getattr(args, "shares", None) else [1.0] * len(parts)
            if len(shares) != len(parts):
                raise ValueError(f"--shares gives {len(shares)} shares for {len(parts)} caches")
            data = LipMix(parts, shares)
        try:
            val = LipData.from_cache(caches[-1], "val", box_size=box, progress=not args.no_progress)
        except ValueError as exc:
            logger.warning("no validation data: %s", exc)
            val = None
        last = run_training(config, train, data, out, val=val, expert_dir=getattr(args, "syncnet", None),
                            device=args.device, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"textcall train {what}: {exc}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items())
    print(f"{what}: {summary}; checkpoint in {out}")
    return 0


# -- evaluation ------------------------------------------------------------------------------------
def register_eval_sync(subparsers) -> None:
    sub = subparsers.add_parser(
        "sync", help="lip-sync offset and confidence of a video (SyncNet LSE-D/LSE-C + a model-free measure)",
        description=(
            "Audio-visual sync of a talking-head video with audio (MP4, MPG, AVI ...), at 16 fps:\n"
            "(a) SyncNet: mean embedding distance for audio offsets -15..15 frames; offset = the\n"
            "    minimum, LSE-D = that minimum distance, LSE-C = median distance - minimum;\n"
            "(b) model-free: correlation of mouth-region motion with the change of the audio RMS\n"
            "    envelope, best lag (noisy on one short clip: pass several files to pool them).\n"
            "Offset convention: +k = the audio lags the video by k frames (sound comes k frames late)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("video", metavar="VIDEO", nargs="+", help="one or more files; several are also pooled")
    sub.add_argument("--shift", type=int, default=0, metavar="FRAMES",
                     help="delay the audio by this many 16 fps frames first (checks the measure: expect +FRAMES)")
    sub.add_argument("--syncnet", default=None, metavar="DIR",
                     help="SyncNet expert folder (default: $TEXTCALL_SYNCNET, else model/weights/syncnet if present)")
    sub.add_argument("--max-offset", type=int, default=15, help="frames searched each way (default %(default)s)")
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.set_defaults(run=_run_eval_sync)


def default_syncnet() -> Path | None:
    env = os.environ.get("TEXTCALL_SYNCNET")
    if env:
        return Path(env).expanduser()
    return SHIPPED_SYNCNET if (SHIPPED_SYNCNET / "model.safetensors").is_file() else None


def _run_eval_sync(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from model.corpus.media import MediaError  # noqa: PLC0415
    from model.lipsync.metric import evaluate_files  # noqa: PLC0415

    if args.threads:
        import torch  # noqa: PLC0415

        torch.set_num_threads(args.threads)
    videos = [args.video] if isinstance(args.video, str) else list(args.video)
    syncnet = Path(args.syncnet).expanduser() if args.syncnet else default_syncnet()
    try:
        report = evaluate_files(videos, syncnet=syncnet, max_offset=args.max_offset, shift=getattr(args, "shift", 0))
    except (MediaError, ValueError, FileNotFoundError) as exc:
        print(f"textcall eval sync: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report if len(videos) > 1 else report["clips"][0], indent=2))
        return 0
    for clip in report["clips"]:
        _print_clip(clip["path"], clip)
    if len(videos) > 1:
        _print_clip(f"pooled over {len(videos)} clips", report["pooled"])
    if report.get("shift"):
        print(f"(audio delayed by {report['shift']} frames before measuring: expect offset +{report['shift']})")
    return 0


def _print_clip(title: str, r: dict) -> None:
    head = f"{title}: {r['frames']} frames at 16 fps ({r['seconds']:.2f} s)" if "frames" in r else f"{title}:"
    print(head)
    mf = r["model_free"]
    print(f"  model-free: best lag {mf['lag']:+d} frames, correlation {mf['correlation']:.3f} "
          f"(at lag 0: {mf['correlation_at_0']:.3f})")
    sn = r.get("syncnet")
    if sn is None:
        print("  syncnet: skipped (no expert: pass --syncnet DIR or set TEXTCALL_SYNCNET)")
    else:
        print(f"  syncnet: offset {sn['offset']:+d} frames, LSE-D {sn['lse_d']:.3f}, LSE-C {sn['lse_c']:.3f} "
              f"({sn['windows']} windows)")
