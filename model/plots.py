"""Loss curves as pictures: every training loop writes its ``loss.csv`` also as ``loss.png``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def loss_plot(path: str | Path, curves: Sequence[tuple[str, Sequence[int], Sequence[float], str]]) -> Path:
    """Draw ``(label, steps, values, matplotlib format)`` curves on one log-scale axis and save as ``path``."""
    import matplotlib  # noqa: PLC0415 (only training draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, steps, values, fmt in curves:
        ax.plot(steps, values, fmt, label=label, lw=0.8 if fmt == "-" else 1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
