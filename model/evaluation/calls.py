"""``textcall eval calls``: whole calls, judged as a user watches them.

Each call is ``utterances`` utterances said into one ``generator.open_call``: everyday sentences
outside the corpus grammar, in mixed modes. A *drawn-face* call starts with a caption (its person
drawn from it) and goes on with text, caption only, nothing, caption + text; a *style* call starts
with a style image (a drawn portrait of someone outside every corpus) and goes on the same way.
Measured, and written to ``OUT/eval.json`` / ``eval.md`` with a contact sheet per call:

- identity (``model/evaluation/identity.py``): the share of each call's frames the face-identity
  judge takes for the person of the call's first frame; beside it, the judge's calibration on held-out
  corpus clips (two clips of one speaker; two speakers);
- fidelity (``model/evaluation/fidelity.py``): the two-sample classifier's accuracy between the calls'
  frames and held-out corpus frames, and detail / colour noise / frame change as ratios to the corpus;
  the same two-sample test on faces drawn for new calls alone. The test is run twice: split by clip
  (as until 2026-12-07), and split by person (calls on one side, corpus speakers on the other, none
  of the test half's people seen in training). A call is one person in every clip, so split by clip
  the classifier can learn who the calls' few people are rather than what generated frames look
  like; the bar reads the split by person;
- lip sync on the speech-text utterances (SyncNet offset within one frame, LSE-C) against two
  references: held-out 2.5 s corpus clips (as ``textcall eval model``: the corpus's grammar spoken by
  espeak-ng), and *spoken references*, corpus people drawn by the corpus synthesizer (true mouths from
  the phoneme timings) saying the calls' own sentences in the calls' own voices and speakers
  (``spoken_references``). LSE-C depends on the speech as much as on the mouth (the same judge gives
  the corpus spoken by Kokoro 0.18 and by espeak-ng 0.32: docs/voices.md), so the second compares
  mouths on the same speech; it is reported beside the bar, not as it: its mouths are only as true as
  the voices' phoneme timings and the synthesizer's mouths for them (docs/2026-12-07-256-pixels.md);
  caption adherence of drawn faces (face-gender judge);
- seconds of generation per second of output, the one-off face apart.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from model.clip import Request
from model.evaluation.fidelity import TwoSampleConfig, ratios, statistics, two_sample_test, within

logger = logging.getLogger(__name__)

# Everyday sentences, none of them GRID's command grammar ("bin blue at f two now"): what people say on a call.
EVERYDAY = (
    "Hi, can you hear me all right?", "Good morning, how was your weekend?", "I think we should start with the budget.",
    "Sorry, I was on mute for a moment.", "The train was late again this morning.", "Could you share your screen, please?",
    "Let's meet again next Tuesday at ten.", "My daughter starts school in September.", "That sounds like a great plan to me.",
    "I'll send you the slides after the call.", "The weather here has been lovely all week.", "We need two more people for the project.",
    "Can you say that again, a bit slower?", "I had pasta with tomatoes for lunch.", "The report is almost finished.",
    "Thanks for joining on such short notice.", "I will be away for the holidays.", "Our new office has a view of the river.",
    "Please check the numbers before Friday.", "It was nice talking to you, see you soon.", "The kids are playing in the garden.",
    "I forgot my umbrella at the station.", "Do you want coffee or tea?", "We moved the meeting to the afternoon.",
    "The internet is a bit slow today.", "My brother lives in a small town by the sea.", "Let me think about it and call you back.",
    "The concert starts at eight tonight.", "I just finished reading a very long book.", "Could we keep this short today?",
    "The bus stop is right outside my door.", "She painted the kitchen a bright yellow.",
)

DRAWN_MODES = ("caption+text", "text", "caption", "unconditional", "caption+text", "text")
STYLE_MODES = ("style+text", "text", "caption+text", "unconditional", "text", "caption")
CAPTIONS = {"male": "A man is talking", "female": "A woman is talking"}


@dataclass(frozen=True)
class CallEvalConfig:
    calls: int = 4
    utterances: int = 5
    style_calls: int = 1  # of ``calls``, how many start with a style image
    faces: int = 32  # faces drawn for new calls alone, for their own two-sample test (0: none)
    reference_clips: int = 64  # held-out corpus clips: fidelity, identity calibration, sync reference
    max_offset: int = 15
    seed: int = 0
    two_sample: TwoSampleConfig = field(default_factory=TwoSampleConfig)
    spoken_references: bool = True  # the calls' sentences said by corpus people with true mouths (sync reference)

    def __post_init__(self) -> None:
        if self.calls < 1 or self.utterances < 2 or not 0 <= self.style_calls <= self.calls:
            raise ValueError("need calls >= 1, utterances >= 2 and 0 <= style_calls <= calls")
        if self.faces < 0 or self.reference_clips < 4:
            raise ValueError("faces must be >= 0 and reference_clips >= 4")


def plan_calls(config: CallEvalConfig, style_images: list[tuple[Path, str]]) -> list[list[tuple[str, Request]]]:
    """Per call, its (mode, request) list. Genders alternate over calls; style calls come last."""
    rng = np.random.default_rng(config.seed)
    sentences = list(rng.permutation(EVERYDAY))
    plan, k = [], 0
    for c in range(config.calls):
        style = c >= config.calls - config.style_calls
        image, gender = style_images[c % len(style_images)] if style else (None, ("female", "male")[c % 2])
        modes = STYLE_MODES if style else DRAWN_MODES
        call = []
        for u in range(config.utterances):
            mode = modes[u % len(modes)]
            text = sentences[k % len(sentences)] if "text" in mode else ""
            k += "text" in mode
            call.append((mode, Request(caption=CAPTIONS[gender] if "caption" in mode else "", text=text,
                                       style_image=image if mode.startswith("style") else None,
                                       seed=config.seed * 100_000 + c * 100 + u, session=f"eval-call-{config.seed}-{c}")))
        plan.append(call)
    return plan


def corpus_clips(caches: list[Path], n: int) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Up to ``n`` held-out (test split) one-second clips from the caches: video ``[F, H, W, 3]``, audio, speaker."""
    from model.corpus.cache import SegmentCache

    videos, audios, speakers = [], [], []
    for cache in caches:
        test = SegmentCache(cache, split="test")
        for i in range(len(test)):
            seg = test[i]
            videos.append(seg.video.transpose(0, 2, 3, 1).copy())
            audios.append(seg.audio)
            speakers.append(f"{Path(cache).name}/{seg.speaker}")
    # two clips per speaker in turn (random speakers, random clips), so the identity judge's
    # calibration has same-speaker pairs however few clips are asked for
    rng = np.random.default_rng(0)
    by: dict[str, list[int]] = {}
    for i, spk in enumerate(speakers):
        by.setdefault(spk, []).append(i)
    order: list[int] = []
    while len(order) < min(n, len(videos)):
        for spk in rng.permutation(sorted(by)):
            left = [i for i in by[spk] if i not in order]
            order += [int(i) for i in rng.permutation(left)[:2]]
    order = order[:n]
    return [videos[i] for i in order], [audios[i] for i in order], [speakers[i] for i in order]


def style_portraits(folder: Path, count: int = 2) -> list[tuple[Path, str]]:
    """Drawn portraits of people outside every corpus (the demo gallery's kind), alternating gender."""
    from model.pipeline import draw_portrait

    return [(draw_portrait(folder / f"style{k}.png", gender=g, seed=300 + k), g)
            for k, g in enumerate(("female", "male")[:count] if count <= 2 else [("female", "male")[i % 2] for i in range(count)])]


def run_call_eval(generator, out: Path, *, caches: list[Path], identity: Path, gender_judge: Path, syncnet: Path | None,
                  corpus: Path | None = None, config: CallEvalConfig = CallEvalConfig(), progress: bool = True,
                  sync_judge: Path | None = None) -> dict:
    """``caches``: corpus caches whose test splits are the fidelity and identity reference; ``corpus``:
    a corpus folder whose held-out 2.5 s clips are the lip-sync reference (as ``textcall eval model``'s;
    None: the caches' one-second segments). ``sync_judge``: a second SyncNet that is not the lip-sync
    generator's training expert (``syncnet`` is): the calls and the corpus clips judged by it too
    (``independent_*`` fields), since a generator learns to please its own expert."""
    from model.evaluation.gender import GenderClassifier
    from model.evaluation.identity import IdentityJudge
    from model.evaluation.suite import _sync, reference_clips
    from model.media import contact_sheet, image_grid, write_mp4

    out = Path(out)
    (out / "calls").mkdir(parents=True, exist_ok=True)
    judge = IdentityJudge.load(identity)
    gender_net = GenderClassifier.load(gender_judge)
    styles = style_portraits(out, 2) if config.style_calls else []
    plan = plan_calls(config, styles)
    ref_video, ref_audio, ref_speakers = corpus_clips(caches, config.reference_clips)
    if len(ref_video) < 4:
        raise FileNotFoundError(f"the caches {', '.join(map(str, caches))} hold fewer than 4 test clips")
    size = getattr(generator, "output_size", None)
    if size is not None and ref_video[0].shape[1] != size:  # fidelity compares frames at the output size
        raise ValueError(f"the generator makes {size}px frames and the caches hold {ref_video[0].shape[1]}px clips: pass "
                         f"--caches made at {size} (textcall corpus prepare --size {size}), or --size {ref_video[0].shape[1]}")

    calls, all_clips, people = [], [], []
    bar = tqdm(total=sum(len(c) for c in plan), desc="calls", unit="utterance", disable=not progress)
    for c, utterances in enumerate(plan):
        call = generator.open_call(utterances[0][1].session)
        rows, frames, sheet = [], [], []
        for u, (mode, request) in enumerate(utterances):
            start = time.perf_counter()
            clip = call.say(request)
            seconds = time.perf_counter() - start
            face_s = float(clip.info.get("timings", {}).get("face", 0.0))
            name = f"call{c}_{u}_{mode.replace('+', '_')}.mp4"
            write_mp4(out / "calls" / name, clip.video, clip.audio, fps=clip.fps, sample_rate=clip.sample_rate)
            row = {"clip": name, "mode": mode, "caption": request.caption, "text": request.text, "seconds": round(clip.seconds, 3),
                   "generation_s": round(seconds, 2), "face_s": round(face_s, 2),
                   "s_per_output_s": round((seconds - face_s) / clip.seconds, 2), "face": clip.info.get("face")}
            if request.caption and mode != "style+text":
                judged = gender_net.predict_clip(clip.video)
                row.update(wanted="female" if "woman" in request.caption else "male", judged=judged)
                row["adherent"] = judged == row["wanted"]
            if request.text:
                row.update(_sync(clip.video, clip.audio, syncnet, config.max_offset))
                if sync_judge is not None:
                    row.update(_independent(_sync(clip.video, clip.audio, sync_judge, config.max_offset)))
                if clip.info.get("speaker"):
                    row["speaker"] = clip.info["speaker"]  # the voice's speaker: its spoken reference says it alike
            rows.append(row)
            frames.append(clip.video)
            all_clips.append(clip.video)
            people.append(f"call{c}")
            sheet.append((f"{u}: {mode}: {request.text[:40]}", clip.video))
            bar.update()
        video = np.concatenate(frames)
        cos = judge.same_as_first(video)
        calls.append({"call": c, "kind": "style" if utterances[0][0].startswith("style") else "drawn", "frames": int(len(video)),
                      "same_as_first": round(float((cos >= judge.threshold).mean()), 4),
                      "cosine_min": round(float(cos.min()), 3), "cosine_median": round(float(np.median(cos)), 3),
                      "faces": sorted({r["face"]["number"] for r in rows if r.get("face")}), "utterances": rows})
        contact_sheet(sheet, out / f"call{c}_sheet.png", columns=8)
    bar.close()

    report: dict = {"config": asdict(config), "calls": calls}
    report["identity"] = {"calibration": judge.calibrate(ref_video, ref_speakers, seed=config.seed),
                          "per_call": [c["same_as_first"] for c in calls],
                          "min": min(c["same_as_first"] for c in calls)}
    corpus_stats, generated_stats = statistics(ref_video), statistics(all_clips)
    report["fidelity"] = {"corpus": corpus_stats, "generated": generated_stats, "ratios": ratios(generated_stats, corpus_stats),
                          "two_sample": two_sample_test(all_clips, ref_video, config.two_sample)}
    if len(set(people)) >= 2 and len(set(ref_speakers)) >= 2:
        report["fidelity"]["two_sample_by_person"] = two_sample_test(all_clips, ref_video, config.two_sample,
                                                                     groups=(people, ref_speakers))
    if config.faces and hasattr(generator, "draw_face"):
        rng = np.random.default_rng(config.seed + 7)
        t0 = time.perf_counter()
        faces = [generator.draw_face({"gender": ("female", "male")[k % 2]}, int(rng.integers(2**31)))[0] for k in range(config.faces)]
        if getattr(generator, "upscales", False):  # a call's face at the output size: upscaled once, on its own
            faces = [generator.upscaler.upscale(f[None], None)[0] for f in faces]
        per_face = (time.perf_counter() - t0) / config.faces
        stills = [v[len(v) // 2 : len(v) // 2 + 1] for v in ref_video]
        report["faces"] = {"count": config.faces, "seconds_per_face": round(per_face, 2),
                           "two_sample": two_sample_test([f[None] for f in faces], stills,
                                                         TwoSampleConfig(**{**asdict(config.two_sample), "frames_per_clip": 1}))}
        image_grid(np.stack(faces), out / "faces.png", columns=8, scale=2 if faces[0].shape[0] <= 64 else 1)
    utterances = [r for c in calls for r in c["utterances"]]
    sync_clips = (reference_clips(corpus, 16, size=ref_video[0].shape[1]) if corpus is not None
                  else list(zip(ref_video[:16], ref_audio[:16])))
    reference_sync = [_sync(v, a, syncnet, config.max_offset) for v, a in sync_clips]
    if sync_judge is not None:
        for row, (v, a) in zip(reference_sync, sync_clips):
            row.update(_independent(_sync(v, a, sync_judge, config.max_offset)))
    voice = getattr(generator, "voice", None)
    if config.spoken_references and syncnet is not None and voice is not None:
        said = [(r["text"], r["speaker"]) for r in utterances if "offset" in r and r.get("speaker")]
        report["spoken_references"] = spoken_references(voice, said, size=ref_video[0].shape[1], syncnet=syncnet,
                                                        max_offset=config.max_offset, seed=config.seed, progress=progress)
    report["summary"] = summarise(utterances, reference_sync, report)
    report["sources"] = getattr(generator, "sources", {})
    settings = getattr(generator, "settings", None)
    report["settings"] = asdict(settings) if settings is not None and hasattr(settings, "__dataclass_fields__") else {}
    (out / "eval.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "eval.md").write_text(markdown(report))
    return report


def spoken_references(voice, said: list[tuple[str, str]], *, size: int, syncnet: Path, max_offset: int = 15, seed: int = 0,
                      fps: float = 16.0, progress: bool = True) -> list[dict]:
    """The calls' own speech with true mouths: for each ``(text, speaker)`` (a voice's speaker id), the
    voice says the text again as that speaker, a corpus person of the speaker's gender (the corpus's
    own people, in turn) says it in a clip rendered, written and read back exactly as corpus clips are
    (``model.corpus.synth.render_clip``: MPEG-1 at 25 fps, mouths from the phoneme timings), the clip
    is cut to the speech (50 ms either side, like a call's utterance) and cropped as the caches are at
    ``size``, and SyncNet judges it as it judges the calls (``_sync``). Returns one row per sentence:
    its text, speaker, corpus person and the sync figures."""
    import tempfile

    from model.corpus.speakers import make_speakers

    genders = {s.id: s.gender for s in voice.speakers()}
    people = make_speakers()
    rows = []
    with tempfile.TemporaryDirectory(prefix="textcall-spoken-") as tmp:
        for k, (text, speaker) in enumerate(tqdm(said, desc="spoken references", unit="clip", disable=not progress)):
            gender = genders.get(speaker)
            pool = [p for p in people if p.gender == gender] or people
            person = pool[k % len(pool)]
            try:
                rows.append(_spoken_reference(voice, text, speaker, person, k, seed, Path(tmp), size, syncnet, max_offset, fps))
            except Exception as exc:  # an extra reference never costs the eval its calls
                logger.warning("spoken reference %d (%r, %s) failed: %s", k, text, speaker, exc)
                rows.append({"text": text, "speaker": speaker, "person": person.id, "error": str(exc)})
    return rows


def _spoken_reference(voice, text: str, speaker: str, person, k: int, seed: int, tmp: Path, size: int, syncnet: Path,
                      max_offset: int, fps: float) -> dict:
    from model.audio import resample
    from model.corpus.grid import face_crop, face_track
    from model.corpus.media import read_clip
    from model.corpus.synth import ClipJob, Said, render_clip
    from model.evaluation.suite import _sync

    speech = voice.synthesize(text, speaker=speaker)
    if not speech.phonemes:
        raise ValueError("the voice gave no phoneme timings")
    render_clip(ClipJob(person, Said(f"said{k:03d}", text, tuple(text.split())), k, seed, tmp, speech=speech))
    folder = tmp / person.id
    clip = read_clip(folder / f"said{k:03d}.mpg")
    with np.load(folder / f"said{k:03d}.truth.npz") as truth:
        start = max(0.0, float(truth["speech_start"]) - 0.05)
    count = int((speech.duration + 0.1) * fps)
    idx = np.minimum(((start + (np.arange(count) + 0.5) / fps) * clip.fps).astype(int), len(clip.frames) - 1)
    track, found = face_track(clip.frames, idx, 3)
    if found == 0:
        raise ValueError("no face found in the rendered clip")
    video = np.stack([face_crop(clip.frames[i], cx, cy, side, size) for i, (cx, cy, side) in zip(idx, track)])
    audio = resample(clip.audio, clip.sample_rate, 16_000)
    first = int(round(start * 16_000))
    audio = audio[first : first + int(round(count / fps * 16_000))]
    return {"text": text, "speaker": speaker, "person": person.id, "seconds": round(count / fps, 3),
            **_sync(video, audio, syncnet, max_offset)}


def _independent(sync: dict) -> dict:
    """The second judge's offset and LSE-C under their own names."""
    return {"independent_offset": sync["offset"], "independent_confidence": sync["confidence"]} if "offset" in sync else {}


def summarise(utterances: list[dict], reference_sync: list[dict], report: dict) -> dict:
    synced = [r for r in utterances if "offset" in r]
    judged = [r for r in utterances if "adherent" in r]
    summary = {
        "utterances": len(utterances),
        "identity_min_call": report["identity"]["min"],
        "identity_corpus_same_speaker": report["identity"]["calibration"]["same_speaker_judged_same"],
        # the bar's test: split by person when there are two calls or more (module docstring)
        "two_sample_accuracy": report["fidelity"].get("two_sample_by_person", report["fidelity"]["two_sample"])["accuracy"],
        "two_sample_accuracy_by_clip": report["fidelity"]["two_sample"]["accuracy"],
        "ratios": report["fidelity"]["ratios"],
        "s_per_output_s": round(float(np.mean([r["s_per_output_s"] for r in utterances])), 2),
        "s_per_output_s_drawn": round(float(np.mean([r["s_per_output_s"] for r in utterances if not r["mode"].startswith("style")])), 2),
    }
    if "faces" in report:
        summary["faces_two_sample_accuracy"] = report["faces"]["two_sample"]["accuracy"]
    if synced:
        summary["offset_within_1"] = round(float(np.mean([abs(r["offset"]) <= 1 for r in synced])), 3)
        summary["confidence"] = round(float(np.mean([r["confidence"] for r in synced])), 3)
    if reference_sync and "offset" in reference_sync[0]:
        summary["reference_confidence"] = round(float(np.mean([r["confidence"] for r in reference_sync])), 3)
    second = [r for r in synced if "independent_offset" in r]
    if second:  # the judge that is not the generator's expert
        summary["independent_offset_within_1"] = round(float(np.mean([abs(r["independent_offset"]) <= 1 for r in second])), 3)
        summary["independent_confidence"] = round(float(np.mean([r["independent_confidence"] for r in second])), 3)
        refs = [r for r in reference_sync if "independent_offset" in r]
        if refs:
            summary["independent_reference_offset_within_1"] = round(float(np.mean([abs(r["independent_offset"]) <= 1 for r in refs])), 3)
            summary["independent_reference_confidence"] = round(float(np.mean([r["independent_confidence"] for r in refs])), 3)
    spoken = [r for r in report.get("spoken_references", []) if "offset" in r]
    if spoken:
        summary["spoken_reference_confidence"] = round(float(np.mean([r["confidence"] for r in spoken])), 3)
        summary["spoken_reference_offset_within_1"] = round(float(np.mean([abs(r["offset"]) <= 1 for r in spoken])), 3)
        # the calls' own utterances that have a spoken reference, paired
        texts = {(r["text"], r["speaker"]) for r in spoken}
        paired = [r for r in synced if (r["text"], r.get("speaker")) in texts]
        summary["spoken_reference_pairs"] = len(paired)
    if judged:
        summary["caption_adherence"] = round(float(np.mean([r["adherent"] for r in judged])), 3)
    bars = {
        "identity>=0.95": summary["identity_min_call"] >= 0.95,
        "identity>=corpus same-speaker rate": summary["identity_min_call"] >= summary["identity_corpus_same_speaker"],
        "two_sample<=0.80": summary["two_sample_accuracy"] <= 0.80,
        "statistics within 1.2x": within(summary["ratios"]),
    }
    if synced:
        bars["offset_within_1>=0.95"] = summary["offset_within_1"] >= 0.95
        if "reference_confidence" in summary:
            bars["confidence>=reference"] = summary["confidence"] >= summary["reference_confidence"]
        if "independent_offset_within_1" in summary:
            bars["independent judge: offset_within_1>=0.95"] = summary["independent_offset_within_1"] >= 0.95
        if "independent_reference_confidence" in summary:
            bars["independent judge: confidence>=reference"] = (summary["independent_confidence"]
                                                                >= summary["independent_reference_confidence"])
    if judged:
        bars["caption_adherence>=0.95"] = summary["caption_adherence"] >= 0.95
    summary["bars"] = bars
    return summary


def markdown(report: dict) -> str:
    s = report["summary"]
    cal = report["identity"]["calibration"]
    fid = report["fidelity"]
    lines = ["# textcall eval calls", "",
             "| call | kind | frames | same person as its first frame | min cosine | faces used |", "|---|---|---|---|---|---|"]
    for c in report["calls"]:
        lines.append(f"| {c['call']} | {c['kind']} | {c['frames']} | {c['same_as_first']} | {c['cosine_min']} | {c['faces']} |")
    lines += ["", f"Identity judge (threshold {cal['threshold']}) on {cal['clips']} held-out corpus clips of {cal['speakers']} speakers: "
              f"two clips of one speaker judged the same person {cal['same_speaker_judged_same']}, two speakers "
              f"{cal['different_speakers_judged_same']}.", "",
              "| fidelity | luma detail | colour noise | frame change |", "|---|---|---|---|",
              "| corpus | " + " | ".join(str(fid["corpus"][k]) for k in ("luma detail", "colour noise", "frame change")) + " |",
              "| calls | " + " | ".join(f"{fid['generated'][k]} ({fid['ratios'][k]}x)" for k in ("luma detail", "colour noise", "frame change")) + " |",
              "", f"Two-sample classifier (generated vs held-out corpus frames; 50 % = indistinguishable): split by clip, "
              f"test accuracy {fid['two_sample']['accuracy']} on {fid['two_sample']['test_frames']} frames"
              + (f"; split by person (no person of the test half seen in training; the bar's), "
                 f"{fid['two_sample_by_person']['accuracy']} on {fid['two_sample_by_person']['test_frames']} frames"
                 if "two_sample_by_person" in fid else "") + ".",
              ]
    if "faces" in report:
        f = report["faces"]
        lines.append(f"Faces drawn for new calls alone ({f['count']}, {f['seconds_per_face']} s each): two-sample accuracy "
                     f"{f['two_sample']['accuracy']} against corpus frames.")
    lines += ["", f"Lip sync on speech-text utterances: offset within one frame {s.get('offset_within_1', '')}, LSE-C "
              f"{s.get('confidence', '')} (held-out corpus clips {s.get('reference_confidence', '')}"
              + (f"; corpus people saying the calls' own sentences in their voices {s['spoken_reference_confidence']}, "
                 f"offset within one frame {s['spoken_reference_offset_within_1']}" if "spoken_reference_confidence" in s else "")
              + "); caption adherence "
              f"{s.get('caption_adherence', '')}; {s['s_per_output_s']} s per output second ({s['s_per_output_s_drawn']} without "
              "style utterances), the one-off face apart."
              + (f" Under a second SyncNet that is not the lip-sync network's training expert: offset within one frame "
                 f"{s['independent_offset_within_1']}, LSE-C {s['independent_confidence']} (held-out corpus clips "
                 f"{s.get('independent_reference_offset_within_1', '')}, {s.get('independent_reference_confidence', '')})."
                 if "independent_offset_within_1" in s else ""), "",
              "Bars: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in s["bars"].items()), ""]
    return "\n".join(lines)
