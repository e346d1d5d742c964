"""Pack a corpus cache small enough to send to a lent GPU machine, and unpack it there.

    python deploy/gpu/pack_corpus.py pack ~/.cache/textcall/corpus/cache64 .gpu/corpus.pack --clips 600
    python deploy/gpu/pack_corpus.py unpack .gpu/corpus.pack /tmp/cache64      # on the GPU machine

A GPU box that can reach nothing (no corpus generation there, 64 MiB of files per trip) still needs
training data. The raw cache is 210 MB and compresses losslessly only to about 100 MB (the MPEG-coded
video and the audio's noise floor leave little redundancy), so the pack:

- keeps ``--clips`` training segments, the same share of every speaker (seeded, reproducible), and
  drops the val and test splits (evaluation runs back on the CPU machine on the full cache);
- stores every video frame as JPEG at ``--quality`` (95: a mean absolute error of about 3 of 255
  levels, on frames that went through MPEG already), about 40 KB per one-second segment instead of 192 KB;
- stores the audio losslessly (int16, lzma over separated byte planes), about 21 KB per segment.

The unpacked folder is an ordinary cache (``model.corpus.cache``): ``textcall train diffusion --data``
reads it as is. Only numpy, OpenCV and the standard library, as on the GPU image.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

FORMAT = "textcall-corpus-pack/1"


def _select(meta: list[dict], clips: int, seed: int) -> np.ndarray:
    """Indices of ``clips`` segments, every speaker's share kept (largest remainders), in cache order."""
    speakers = np.array([m["speaker"] for m in meta])
    names, counts = np.unique(speakers, return_counts=True)
    quota = counts * clips / len(meta)
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take))[: clips - take.sum()]:
        take[i] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(speakers == name), size=k, replace=False) for name, k in zip(names, take)]
    return np.sort(np.concatenate(chosen))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def pack(cache: Path, out: Path, clips: int, quality: int = 95, seed: int = 0) -> dict:
    index = json.loads((cache / "index.json").read_text())
    frames, channels, size, samples = (index[k] for k in ("frames", "channels", "size", "samples"))
    meta = index["segments"]["train"]
    if not 0 < clips <= len(meta):
        raise ValueError(f"--clips must be in 1..{len(meta)} (the cache's training segments), got {clips}")
    video = np.memmap(cache / "train.video.u8", np.uint8, "r", shape=(len(meta), frames, channels, size, size))
    audio = np.memmap(cache / "train.audio.i16", "<i2", "r", shape=(len(meta), samples))
    keep = _select(meta, clips, seed)
    jpegs: list[bytes] = []
    for i in keep:
        for frame in video[i]:
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame.transpose(1, 2, 0)[:, :, ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise RuntimeError("OpenCV could not encode a frame as JPEG")
            jpegs.append(buf.tobytes())
    planes = np.ascontiguousarray(audio[keep]).astype("<i2").view(np.uint8).reshape(-1, 2)
    header = {**{k: v for k, v in index.items() if k != "segments"}, "format": FORMAT, "quality": quality,
              "packed_from": str(cache), "counts": {"train": len(keep), "val": 0, "test": 0},
              "segments": {"train": [meta[i] for i in keep], "val": [], "test": []},
              "jpeg_sizes": [len(j) for j in jpegs]}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w") as tar:
        _add(tar, "index.json", json.dumps(header).encode())
        _add(tar, "video.jpg", b"".join(jpegs))
        _add(tar, "audio.xz", lzma.compress(planes[:, 0].tobytes() + planes[:, 1].tobytes(), preset=6))
    return {"clips": len(keep), "bytes": out.stat().st_size}


def unpack(pack_path: Path, folder: Path) -> dict:
    with tarfile.open(pack_path) as tar:
        header = json.loads(tar.extractfile("index.json").read())
        if header.get("format") != FORMAT:
            raise ValueError(f"{pack_path} is not a {FORMAT} file")
        jpeg_blob = tar.extractfile("video.jpg").read()
        planes = lzma.decompress(tar.extractfile("audio.xz").read())
    n, frames, size, samples = header["counts"]["train"], header["frames"], header["size"], header["samples"]
    half = len(planes) // 2
    audio = np.empty((n * samples, 2), np.uint8)
    audio[:, 0], audio[:, 1] = np.frombuffer(planes[:half], np.uint8), np.frombuffer(planes[half:], np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").unlink(missing_ok=True)  # invalid until the arrays are complete
    with open(folder / "train.video.u8", "wb") as fh:
        offset = 0
        for length in header["jpeg_sizes"]:
            img = cv2.imdecode(np.frombuffer(jpeg_blob, np.uint8, length, offset), cv2.IMREAD_COLOR)
            if img is None or img.shape != (size, size, 3):
                raise ValueError(f"{pack_path}: a frame did not decode to {size}x{size} RGB")
            fh.write(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)).tobytes())
            offset += length
    if offset != len(jpeg_blob) or len(header["jpeg_sizes"]) != n * frames:
        raise ValueError(f"{pack_path}: frame table does not match the video data")
    audio.view("<i2").reshape(n, samples).tofile(folder / "train.audio.i16")
    index = {k: v for k, v in header.items() if k not in ("format", "quality", "jpeg_sizes")}
    (folder / "index.json").write_text(json.dumps(index, indent=1))
    return {"clips": n, "folder": str(folder)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="cache folder -> pack file")
    p.add_argument("cache", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--clips", type=int, default=600, help="training segments to keep (default 600)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the frames (default 95)")
    p.add_argument("--seed", type=int, default=0)
    u = sub.add_parser("unpack", help="pack file -> cache folder")
    u.add_argument("pack", type=Path)
    u.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            result = pack(args.cache.expanduser(), args.out, args.clips, args.quality, args.seed)
        else:
            result = unpack(args.pack, args.folder.expanduser())
    except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
