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


class LossLog:
    """A training run's ``loss.csv`` and its picture ``loss.png``.

    One header of ``columns`` (the first is ``step``), one row per log interval. A run resumed from
    a checkpoint at ``resume_step`` first drops the rows logged after it (a killed run logs ahead of
    its saves), so the curve never shows a step twice. Only the main process of a distributed run
    writes (``main``).
    """

    def __init__(self, path: str | Path, columns: Sequence[str], *, resume_step: int = 0, main: bool = True) -> None:
        import csv

        self.path, self.columns, self.main = Path(path), list(columns), main
        if not main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if resume_step and self.path.is_file():
            with open(self.path, newline="") as fh:
                rows = [r for r in list(csv.reader(fh))[1:] if r and int(r[0]) <= resume_step]
        with open(self.path, "w", newline="") as fh:
            csv.writer(fh).writerows([self.columns, *rows])

    def append(self, values: dict) -> None:
        """One row; values missing from ``values`` stay empty, floats are written with 6 significant digits."""
        import csv

        if not self.main:
            return
        cells = ["" if values.get(c) is None else (f"{values[c]:.6g}" if isinstance(values[c], float) else values[c]) for c in self.columns]
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow(cells)

    def rows(self) -> list[dict]:
        import csv

        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))

    def plot(self, path: str | Path, series: Sequence[tuple[str, str]]) -> Path | None:
        """``series``: (column, label) pairs; columns logged only now and then are drawn as points."""
        rows = self.rows() if self.main else []
        curves = []
        for column, label in series:
            points = [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]
            if points:
                steps, values = zip(*points)
                curves.append((label, steps, values, "-" if len(points) == len(rows) else "o-"))
        return loss_plot(path, curves) if curves else None
