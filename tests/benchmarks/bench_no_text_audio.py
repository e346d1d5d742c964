"""Measurements of the audio a joint diffusion model makes without speech text.

    python tests/benchmarks/bench_no_text_audio.py [--weights model/weights/diffusion] [--clips 16]
        [--bad DIR --guidance 2] [--contrast 0.315] [--steps 10] [--threads 2] [--png envelopes.png]

Two tables, for watching a training run's audio branch (the no-text bar of ``textcall eval`` is the
same envelope test on the receiver's whole pipeline):

1. **From noise.** ``--clips`` one-second joint samples (captions in turn, DPM++), their loudness
   envelope's level range and 2-8 Hz share (``model.evaluation.envelope``) against the bar set by
   one-second windows of the corpus cache's test split. With ``--bad DIR`` the audio is sampled with
   autoguidance (Karras et al. 2024): eps = eps_bad + w (eps_good - eps_bad) on the audio, ``DIR``
   being a less-trained network of the same kind and space (same audio features and ``audio_scale``;
   the receiver's is ``model/weights/autoguide``, w = 3). Each clip is judged twice: as sampled, and
   with its spectrogram's contrast limited to ``--contrast`` (``MelCodec.limit_contrast``, as the
   receiver does; the corpus windows' own median spread is printed beside it).
2. **Under a real video.** The test split's video imposed on all 16 frames (replacement, as the
   receiver does for a chunk's prefix) and only the audio sampled: the correlation of its envelope
   with the true audio's says whether the audio branch follows the mouth at all (true speech against
   itself: 1).

Audio is decoded as the receiver decodes it (``generate.audio_from_model``: scaled down to a 0.95
peak, never clipped; clipping loud guided audio would flatten its envelope and flatter the test).
``--png`` draws the envelopes of table 2 (generated against true) and, beside it
(``*_spectrograms.png``), table 1's first spectrograms as sampled and contrast-limited above corpus
windows. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from model.corpus.cache import SegmentCache
from model.defaults import AUDIO_CONTRAST
from model.diffusion.audio_codec import MelCodec, audio_codec
from model.diffusion.av import AV
from model.diffusion.checkpoint import load_model
from model.diffusion.config import check_autoguide
from model.diffusion.generate import audio_from_model
from model.diffusion.guidance import conditioned, with_audio_autoguidance, with_replacement
from model.diffusion.sampling import sample
from model.diffusion.schedule import linear_schedule
from model.evaluation.envelope import envelope_stats, speech_like, thresholds, windows
from model.lipsync.metric import rms_envelope

CACHE = Path("~/.cache/textcall/corpus/cache64").expanduser()
FRAMES_PER_S = 50  # envelope frames of 20 ms, as in model.evaluation.envelope


def envelope(audio: np.ndarray) -> np.ndarray:
    n = len(audio) * FRAMES_PER_S // 16000
    return rms_envelope(np.asarray(audio, np.float64), n, fps=FRAMES_PER_S, rate=16000)


def noise_for(config, seed: int) -> tuple[AV, torch.Generator]:
    cfg = config.unet
    g = torch.Generator().manual_seed(seed)
    return AV(torch.randn((1, cfg.frames, cfg.video_channels, cfg.image_size, cfg.image_size), generator=g),
              torch.randn((1, cfg.audio_channels, cfg.audio_length), generator=g)), g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=Path("model/weights/diffusion"))
    parser.add_argument("--bad", type=Path, help="a less-trained network for autoguidance of the audio")
    parser.add_argument("--guidance", type=float, default=2.0, help="autoguidance weight w (with --bad)")
    parser.add_argument("--contrast", type=float, default=AUDIO_CONTRAST,
                        help="spread the second judgement limits the spectrogram to (default %(default)s)")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="DPM++ steps")
    parser.add_argument("--data", type=Path, default=CACHE, help="corpus cache (its test split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--png", type=Path, help="draw table 2's envelopes here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    good, config = load_model(args.weights)
    bad = None
    if args.bad is not None:
        bad, bad_config = load_model(args.bad)
        try:
            check_autoguide(config, bad_config)
        except ValueError as exc:
            parser.error(f"--bad: {exc}")
    try:
        test = SegmentCache(args.data, "test")
    except FileNotFoundError as exc:
        parser.error(str(exc))
    if len(test) == 0:
        parser.error(f"no test segments in {args.data}")
    schedule = linear_schedule(config.schedule)
    codec = audio_codec(config)
    speech = [w for i in range(min(len(test), 60)) for w in windows(test[i].audio)]
    reference = [envelope_stats(w) for w in speech]
    bar = thresholds(reference)
    mel = isinstance(codec, MelCodec) and args.contrast > 0

    print(f"{args.weights}: DPM++-{args.steps}"
          + (f", audio autoguided by {args.bad} with w = {args.guidance:g}" if bad is not None else ""))
    print(f"bar (10th percentile of {len(reference)} corpus windows): range >= {bar['range_db']} dB, "
          f"2-8 Hz share >= {bar['syllabic']}")
    if mel:
        spread = codec.spread(codec.encode(torch.from_numpy(np.stack(speech)).float()))
        print(f"corpus windows' spectrogram spread: median {float(spread.median()):.3f} "
              f"(10th-90th percentile {float(spread.quantile(0.1)):.3f}-{float(spread.quantile(0.9)):.3f}); "
              f"limited to {args.contrast:g} below")
    print()
    print("| from noise | clip | range dB | 2-8 Hz share | speech-like | spread | limited: range dB | 2-8 Hz share | speech-like | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows, limited, spectrograms = [], [], []  # spectrograms: the first (sampled, limited) spectrograms, for --png
    for k in range(args.clips):
        caption = torch.full((1,), k % len(config.captions), dtype=torch.long)
        noise, g = noise_for(config, 100 + k)
        t0 = time.perf_counter()
        denoiser = conditioned(good, caption)
        if bad is not None:
            denoiser = with_audio_autoguidance(denoiser, conditioned(bad, caption), args.guidance)
        x = sample("dpm++", denoiser, schedule, noise, args.steps, generator=g)
        phases = torch.get_rng_state()  # Griffin-Lim draws its phases here: the same for both judgements
        stats = envelope_stats(audio_from_model(codec, x.audio))
        rows.append(stats)
        line = f"| | {k} | {stats['range_db']:.1f} | {stats['syllabic']:.3f} | {speech_like(stats, bar)} | "
        if mel:
            torch.set_rng_state(phases)
            held_mel = codec.limit_contrast(x.audio, args.contrast)
            if len(spectrograms) < 6:
                spectrograms.append((x.audio[0].float() / codec.scale, held_mel[0].float() / codec.scale))
            held = envelope_stats(audio_from_model(codec, held_mel))
            limited.append(held)
            line += (f"{float(codec.spread(x.audio)[0]):.3f} | {held['range_db']:.1f} | {held['syllabic']:.3f} | "
                     f"{speech_like(held, bar)} | ")
        else:
            line += "| | | | "
        print(line + f"{time.perf_counter() - t0:.1f} |")

    def medians(judged: list[dict]) -> str:
        if not judged:
            return "| | | "
        passed = sum(speech_like(s, bar) for s in judged)
        return (f"{np.median([s['range_db'] for s in judged]):.1f} | {np.median([s['syllabic'] for s in judged]):.3f} | "
                f"{passed}/{len(judged)} | ")

    print(f"| **median** | | {medians(rows)}| {medians(limited)}|\n")

    print("| under a real video | segment | range dB | 2-8 Hz share | true share | envelope corr. with true |")
    print("|---|---|---|---|---|---|")
    pairs, corrs = [], []
    step = max(1, len(test) // args.clips)
    for k in range(min(args.clips, len(test))):
        seg = test[k * step]
        video = torch.from_numpy(seg.video).float().div(127.5).sub(1.0)[None]  # [1, F, C, H, W]
        noise, g = noise_for(config, 100 + k)
        denoiser = with_replacement(conditioned(good, torch.zeros(1, dtype=torch.long)), schedule,
                                    video_prefix=video, generator=g)
        x = sample("dpm++", denoiser, schedule, noise, args.steps, generator=g)
        audio = audio_from_model(codec, x.audio)
        made, true = envelope(audio), envelope(seg.audio)
        corr = float(np.corrcoef(made, true)[0, 1])
        stats, true_stats = envelope_stats(audio), envelope_stats(seg.audio)
        pairs.append((made, true))
        corrs.append(corr)
        print(f"| | {k * step} | {stats['range_db']:.1f} | {stats['syllabic']:.3f} | {true_stats['syllabic']:.3f} | {corr:.3f} |")
    print(f"| **median** | | | | | {np.median(corrs):.3f} |")

    if args.png is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        shown = pairs[:8]
        fig, axes = plt.subplots(len(shown), 1, figsize=(7, 1.3 * len(shown)), sharex=True, squeeze=False)
        seconds = np.arange(len(shown[0][0])) / FRAMES_PER_S
        for ax, (made, true), corr in zip(axes[:, 0], shown, corrs):
            ax.plot(seconds, 20 * np.log10(true + 1e-6), label="true speech", color="0.4")
            ax.plot(seconds, 20 * np.log10(made + 1e-6), label="generated under its video")
            ax.set_ylabel("dB")
            ax.set_title(f"envelope correlation {corr:.2f}", fontsize=8, loc="right")
        axes[0, 0].legend(fontsize=7, loc="lower left")
        axes[-1, 0].set_xlabel("seconds")
        fig.tight_layout()
        fig.savefig(args.png, dpi=100)
        plt.close(fig)
        print(f"\nenvelopes: {args.png}")
        if spectrograms:
            out = args.png.with_name(args.png.stem + "_spectrograms.png")
            corpus = codec.encode(torch.from_numpy(np.stack(speech[: len(spectrograms)])).float()) / codec.scale
            grid = [("sampled", [raw for raw, _ in spectrograms]),
                    (f"limited to {args.contrast:g}", [held for _, held in spectrograms]),
                    ("corpus speech", list(corpus))]
            fig, axes = plt.subplots(3, len(spectrograms), figsize=(1.6 * len(spectrograms), 4.6), squeeze=False)
            for r, (label, mels) in enumerate(grid):
                for c, m in enumerate(mels):
                    ax = axes[r, c]
                    ax.imshow(m.numpy(), origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title(f"std {float(m.std()):.2f}", fontsize=7)
                axes[r, 0].set_ylabel(label, fontsize=8)
            fig.suptitle("normalised log-mel, 1 s: audio sampled from noise, and corpus speech", fontsize=9)
            fig.tight_layout()
            fig.savefig(out, dpi=100)
            plt.close(fig)
            print(f"spectrograms: {out}")


if __name__ == "__main__":
    main()
