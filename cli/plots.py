"""Training curves as a picture: loss and test accuracy against queries and against dollars, one
line per run. matplotlib is an optional extra (`pip install 'barapi[plot]'`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from barapi.errors import ConfigError
from barapi.store import MetricRow

# (metric, axis label) down the rows; (x value, axis label) across the columns.
PANELS_Y = (("loss", "training loss (minibatch, at W)"), ("test_accuracy", "test accuracy"))
PANELS_X = (("queries", "queries (paid + from cache)"), ("cost_usd", "dollars spent"))


def x_value(row: MetricRow, axis: str) -> float:
    return row.queries_paid + row.queries_cached if axis == "queries" else row.cost_usd


def plot_runs(curves: dict[str, Sequence[MetricRow]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no screen needed
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ConfigError(f"plots need matplotlib: pip install 'barapi[plot]' ({error})") from error
    if path.suffix.lower() not in {".png", ".svg", ".pdf"}:
        raise ConfigError(f"--plot {path}: write a .png, .svg or .pdf")
    figure, axes = plt.subplots(len(PANELS_Y), len(PANELS_X), figsize=(11, 7), squeeze=False)
    for name, rows in curves.items():
        for i, (metric, _) in enumerate(PANELS_Y):
            points = [r for r in rows if getattr(r, metric) is not None]
            for j, (axis, _) in enumerate(PANELS_X):
                # Test accuracy exists only where the run evaluated: mark those points.
                axes[i][j].plot(
                    [x_value(r, axis) for r in points],
                    [getattr(r, metric) for r in points],
                    marker="o" if metric == "test_accuracy" else None,
                    markersize=4,
                    label=name,
                )
    for i, (_, y_label) in enumerate(PANELS_Y):
        for j, (_, x_label) in enumerate(PANELS_X):
            axes[i][j].set_xlabel(x_label)
            axes[i][j].set_ylabel(y_label)
            axes[i][j].grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle("barapi: " + ", ".join(curves))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        figure.savefig(path, dpi=110)
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error}") from error
    finally:
        plt.close(figure)
