"""``textcall sample``: generate talking-head MP4s from a caption and/or a speech waveform.

Module import stays light (argparse only); torch and the model load inside the handler.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from model import defaults

logger = logging.getLogger(__name__)


def register_sample(subparsers) -> None:
    sub = subparsers.add_parser(
        "sample",
        help="generate video + speech MP4s with the joint diffusion model",
        description=(
            "Generate one chunk (1 s for the shipped configs) of talking-head video and speech.\n\n"
            "Conditioning (any combination, or none for unconditional generation):\n"
            "  --caption TEXT   through the network (AdaGN; --cfg-scale > 1 adds classifier-free\n"
            "                   guidance) or, with --classifier DIR, through classifier guidance\n"
            "  --audio WAV      speech: the audio is replaced (Eq. 10) and the video guided by\n"
            "                   reconstruction (Eq. 11, --recon-scale); the output audio is the WAV\n"
            "Without --audio, --autoguide DIR (a less-trained checkpoint of the same model) guides\n"
            "the audio sampled from noise with --audio-guidance W (autoguidance; not in the paper).\n"
            "Samplers: dpm++ (default, 20 steps), ddim (50), ddpm (always 1000 steps, the paper's)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument(
        "--checkpoint", default=os.environ.get("TEXTCALL_DIFFUSION"), metavar="DIR",
        help="folder with model.safetensors + config.json (env TEXTCALL_DIFFUSION)",
    )
    sub.add_argument("--caption", default="",
                     help="e.g. 'A woman is talking' (default: none); a model that reads descriptions (trained with\n"
                     "--describe) takes free-form captions, read by the caption encoder in model/weights/captions")
    sub.add_argument("--audio", metavar="WAV", help="speech waveform to condition on (any rate, mono or stereo)")
    sub.add_argument("--sampler", choices=defaults.SAMPLERS, default=defaults.SAMPLER)
    sub.add_argument("--steps", type=int, default=None, help="denoising steps (default: the sampler's, "
                     + ", ".join(f"{n} {name}" for name, n in defaults.SAMPLER_STEPS.items()) + ")")
    sub.add_argument("--cfg-scale", type=float, default=1.0, help="classifier-free guidance scale (1 = off)")
    sub.add_argument("--classifier", metavar="DIR", help="noisy classifier checkpoint: caption by classifier guidance")
    sub.add_argument("--classifier-scale", type=float, default=1.0)
    sub.add_argument("--recon-scale", type=float, default=1.0, help="C of Eq. 11 (reconstruction guidance)")
    sub.add_argument("--autoguide", metavar="DIR", help="weaker checkpoint for autoguidance of audio from noise")
    sub.add_argument("--audio-guidance", type=float, default=defaults.AUDIO_GUIDANCE, metavar="W",
                     help="autoguidance weight with --autoguide (1 = off; default %(default)s)")
    sub.add_argument("--audio-contrast", type=float, default=defaults.AUDIO_CONTRAST, metavar="S",
                     help="largest spread of a spectrogram sampled from noise (mel models; 0 = off; "
                     "default %(default)s)")
    sub.add_argument("--paper-eq10", action="store_true", help="re-noise the audio with Eq. 10 as printed")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--num", type=int, default=1, help="number of samples (seeds seed, seed+1, ...)")
    sub.add_argument("--out", default="sample.mp4", help="output file (several samples: NAME_k.mp4)")
    sub.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.set_defaults(run=_run_sample)


def _read_audio(path: str, rate: int):
    import numpy as np
    import soundfile as sf

    from model.audio import resample

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != rate:
        audio = resample(audio, sr, rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _caption(config, text: str):
    """What the model reads of ``--caption``: a caption index, or for a description model what the
    caption encoder reads (the shipped one; the gender keywords when it is missing)."""
    if not config.unet.describes or not text.strip():
        return config.caption_index(text) if text.strip() else 0
    from pathlib import Path

    from model.describe.encoder import CaptionEncoder

    folder = Path(__file__).resolve().parent.parent / "weights" / "captions"
    if not folder.is_dir():
        return config.caption_index(text)
    reading = CaptionEncoder.load(folder).read(text)
    if reading.unknown:
        print(f"textcall sample: passed over {', '.join(reading.unknown)} in the caption", file=sys.stderr)
    return reading.said()


def _run_sample(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    import torch

    from model.diffusion.checkpoint import load_model
    from model.diffusion.config import ClassifierConfig, check_autoguide, check_classifier
    from model.diffusion.generate import GuidanceConfig, build_guidance, generate_av
    from model.diffusion.schedule import q_step_literal
    from model.media import write_mp4

    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.checkpoint:
        print("textcall sample: --checkpoint (or TEXTCALL_DIFFUSION) is required", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        guidance = GuidanceConfig(cfg_scale=args.cfg_scale, classifier_scale=args.classifier_scale,
                                  recon_scale=args.recon_scale, audio_guide_scale=args.audio_guidance,
                                  audio_contrast=args.audio_contrast)
        model, config = load_model(args.checkpoint, device)
        if isinstance(config, ClassifierConfig):
            raise ValueError(f"{args.checkpoint} is a classifier, not a diffusion model")
        caption = _caption(config, args.caption)
        classifier = None
        if args.classifier:
            classifier, cconfig = load_model(args.classifier, device)
            check_classifier(config, cconfig)
        guide = None
        if args.autoguide:
            guide, gconfig = load_model(args.autoguide, device)
            check_autoguide(config, gconfig)
        audio = None
        if args.audio:
            audio = _read_audio(args.audio, config.sample_rate)
            seconds = config.unet.audio_samples / config.sample_rate
            if audio.size > config.unet.audio_samples:
                print(f"textcall sample: using the first {seconds:g} s of {args.audio} (one chunk)", file=sys.stderr)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"textcall sample: {exc}", file=sys.stderr)
        return 2
    stack = build_guidance(model, config, guidance=guidance, caption=caption, classifier=classifier,
                           audio_guide=guide)
    if args.paper_eq10:  # research only: Eq. 10 as printed (guidance.with_replacement says why it is not the default)
        stack = dataclasses.replace(stack, renoise=q_step_literal)
    out = Path(args.out)
    for k in range(args.num):
        video, speech = generate_av(stack, audio_condition=audio, sampler=args.sampler, steps=args.steps,
                                    seed=args.seed + k, progress=True)
        path = out if args.num == 1 else out.with_name(f"{out.stem}_{k}{out.suffix or '.mp4'}")
        write_mp4(path, video, speech, fps=config.video_fps, sample_rate=config.sample_rate)
        print(path)
    return 0
