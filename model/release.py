"""Ship trained checkpoints as the embedded defaults in ``model/weights``.

    python -m model.release diffusion=~/.cache/textcall/train/diffusion-small \\
        classifier=~/.cache/textcall/train/classifier-small syncnet=... lipsync=... [--out model/weights]

Each ``name=folder`` is copied to ``out/name``: ``config.json`` unchanged, ``model.safetensors`` with
floating-point tensors stored as float16 (halves the repository's size; loading casts back to the
module's float32 through ``load_state_dict``), and the training folder's ``README.md`` model card with
a line on the conversion. The loss curve picture comes along when there is one. Prints the total
size, which must stay at or below 50 MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LIMIT_BYTES = 50 * 1024 * 1024
WEIGHTS = Path(__file__).resolve().parent / "weights"


def release(name: str, source: Path, out: Path) -> int:
    """Copy one checkpoint folder; returns the bytes written."""
    source = source.expanduser()
    for needed in ("config.json", "model.safetensors"):
        if not (source / needed).is_file():
            raise FileNotFoundError(f"{source} has no {needed}")
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(source / "model.safetensors"))
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    save_file(half, str(target / "model.safetensors"), metadata={"source": "textcall", "dtype": "float16"})
    shutil.copy(source / "config.json", target / "config.json")
    card = (source / "README.md").read_text() if (source / "README.md").is_file() else f"# {name}\n"
    card = card.rstrip() + "\n- shipped: weights stored as float16 by `python -m model.release` (loaded as float32)\n"
    (target / "README.md").write_text(card)
    for extra in ("loss.png",):
        if (source / extra).is_file():
            shutil.copy(source / extra, target / extra)
    for path in target.iterdir():
        if path.is_file():  # a sub-model's folder (portrait/clean) keeps its own mode
            path.chmod(0o644)
    return sum(p.stat().st_size for p in target.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="+", metavar="NAME=FOLDER")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)
    try:
        pairs = [item.split("=", 1) for item in args.items]
        if any(len(p) != 2 or not p[0] for p in pairs):
            raise ValueError("items must be NAME=FOLDER")
        for name, folder in pairs:
            size = release(name, Path(folder), args.out)
            print(f"{name}: {size / 1e6:.1f} MB -> {args.out / name}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 2
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"model/weights in all: {total / 2**20:.1f} MiB (limit {LIMIT_BYTES / 2**20:.0f} MiB)")
    summary = {d.name: json.loads((d / "config.json").read_text()).get("kind", d.name) for d in sorted(args.out.iterdir()) if (d / "config.json").is_file()}
    print(f"shipped: {summary}")
    return 0 if total <= LIMIT_BYTES else 1


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
