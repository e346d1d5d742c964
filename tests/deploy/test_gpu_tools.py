"""deploy/gpu: the corpus pack that carries training data to a lent GPU machine, and the lease script."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from model.corpus.cache import CacheWriter, SegmentCache
from tests.integration.processes import ROOT

sys.path.insert(0, str(ROOT / "deploy" / "gpu"))
import pack_corpus  # noqa: E402


def _cache(folder, speakers=(("s1", 6), ("s2", 3), ("s3", 3))):
    rng = np.random.default_rng(0)
    writer = CacheWriter(folder, frames=4, size=16, samples=4000, fps=16, sample_rate=16000)
    for speaker, count in speakers:
        for i in range(count):
            # smooth frames (JPEG's case) with a per-segment brightness, and noisy audio (no redundancy)
            ramp = np.linspace(40, 200, 16)[None, None, :, None] * np.ones((4, 3, 16, 16)) + 2 * i
            meta = {"caption": "A man is talking", "speaker": speaker, "sentence": f"{speaker}-{i}", "start": 0.0}
            writer.add("train", ramp.astype(np.uint8), rng.uniform(-0.9, 0.9, 4000).astype(np.float32), meta)
    writer.add("test", np.zeros((4, 3, 16, 16), np.uint8), np.zeros(4000, np.float32),
               {"caption": "", "speaker": "s9", "sentence": "t", "start": 0.0})
    writer.close()
    return SegmentCache(folder)


def test_pack_round_trip_keeps_audio_exactly_and_every_speakers_share(tmp_path) -> None:
    original = _cache(tmp_path / "cache")
    info = pack_corpus.pack(tmp_path / "cache", tmp_path / "c.pack", clips=6)
    assert info["clips"] == 6
    pack_corpus.unpack(tmp_path / "c.pack", tmp_path / "out")
    packed = SegmentCache(tmp_path / "out")
    assert len(packed) == 6 and len(SegmentCache(tmp_path / "out", "test")) == 0
    assert sorted(m["speaker"] for m in packed.meta) == ["s1", "s1", "s1", "s2", "s2", "s3"]
    by_name = {m["sentence"]: i for i, m in enumerate(original.meta)}
    for i, meta in enumerate(packed.meta):
        j = by_name[meta["sentence"]]
        assert np.array_equal(packed[i].audio, original[j].audio)  # lossless
        assert np.abs(packed[i].video.astype(int) - original[j].video).mean() < 3  # JPEG at quality 95


def test_pack_refuses_more_clips_than_the_cache_has(tmp_path) -> None:
    _cache(tmp_path / "cache")
    assert pack_corpus.main(["pack", str(tmp_path / "cache"), str(tmp_path / "c.pack"), "--clips", "13"]) == 1
    assert pack_corpus.main(["unpack", str(tmp_path / "missing.pack"), str(tmp_path / "out")]) == 1


def test_lease_script_parses_and_names_only_what_exists() -> None:
    script = ROOT / "deploy" / "gpu" / "lease.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for path in ("deploy/gpu/pack_corpus.py", "deploy/gpu/sample_sheet.py", "tests/benchmarks/bench_diffusion.py",
                 "model/weights/diffusion/config.json"):
        assert path in text and (ROOT / path).is_file()


def test_face_lease_script_parses_and_runs_commands_that_exist() -> None:
    """lease_face.sh: bash parses it, the files it names exist, and every `textcall` / trainer verb it
    calls is one the CLI has, with flags the CLI knows."""
    import re
    import shlex

    from sender.cli import build_parser

    script = ROOT / "deploy" / "gpu" / "lease_face.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for path in ("tests/benchmarks/bench_reference.py", "tests/benchmarks/bench_portrait.py", "model/weights/diffusion/config.json"):
        assert path in text and (ROOT / path).is_file()
    parser = build_parser()
    joined = re.sub(r"\\\n\s*", " ", text)  # continuation lines
    calls = re.findall(r'\$TC (corpus [a-z]+ [^>&\n]*)', joined)
    calls += ["train " + c for c in re.findall(r'^\s*train "\$[A-Z_]+" [a-z-]+ ([a-z-]+ [^&\n]*)', joined, flags=re.M)]
    assert len(calls) == 10, calls
    for call in calls:
        argv = [a if not a.startswith("$") else "1" for a in shlex.split(call)]  # a variable: a number or a path
        parser.parse_args(argv + (["--out", "x"] if argv[0] == "train" else []))


@pytest.mark.parametrize("clips,expect", [(4, {"s1": 2, "s2": 1, "s3": 1}), (12, {"s1": 6, "s2": 3, "s3": 3})])
def test_selection_is_proportional_and_reproducible(clips, expect) -> None:
    meta = [{"speaker": s} for s, n in (("s1", 6), ("s2", 3), ("s3", 3)) for _ in range(n)]
    chosen = pack_corpus._select(meta, clips, seed=0)
    counts = {s: sum(meta[i]["speaker"] == s for i in chosen) for s in ("s1", "s2", "s3")}
    assert counts == expect and np.array_equal(chosen, pack_corpus._select(meta, clips, seed=0))
