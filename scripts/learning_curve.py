"""Learning curves of training runs kept in run folders (``train(..., run_dir=)``).

    python scripts/learning_curve.py runs/f12 runs/f32 -o docs/model-runs/learning-curve.png

One line per run: the validation mAP (top) and the validation loss (bottom) against the
training steps (epoch × steps per epoch, so that runs with other epoch lengths line up),
labelled by the run folder's name and its base_filters; the best epoch so far is
marked. Reads each folder's ``run.json`` (the configuration) and ``state.json`` (the
history, as of the last checkpoint: a run still going on shows where it is). Needs
matplotlib (in the ``testing`` extra).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def read_curve(folder: Path) -> dict:
    """A run folder's label, steps per epoch and history rows; ValueError if it is none."""
    try:
        record = json.loads((folder / "run.json").read_text())
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{folder} is not a run folder with a checkpoint ({error}).") from None
    config = record.get("config", {})
    steps = int(config.get("steps_per_epoch", 1))
    rows = [[math.nan if value is None else value for value in row]
            for row in state.get("history", [])]
    finished = "finished" if state.get("finished") else f"{state.get('epochs_done', 0)}/" \
        f"{config.get('epochs', '?')} epochs"
    return {"label": f"{folder.name} (base_filters {config.get('base_filters', '?')}, "
                     f"{finished})",
            "steps": [row[0] * steps for row in rows], "val_loss": [row[2] for row in rows],
            "val_map": [row[3] for row in rows], "best_epoch": state.get("best_epoch", 0),
            "steps_per_epoch": steps}


def plot(curves: list[dict], out: Path) -> Path:
    """Write the figure of ``curves`` to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 6.5))
    for curve in curves:
        scored = [(s, m) for s, m in zip(curve["steps"], curve["val_map"]) if not math.isnan(m)]
        line, = top.plot(*zip(*scored), marker=".", label=curve["label"]) if scored else \
            top.plot([], [], label=curve["label"])
        bottom.plot(curve["steps"], curve["val_loss"], color=line.get_color())
        best = curve["best_epoch"] * curve["steps_per_epoch"]
        if best in curve["steps"]:
            index = curve["steps"].index(best)
            top.plot(best, curve["val_map"][index], "o", mfc="none", ms=10,
                     color=line.get_color())
    top.set_ylabel("validation mAP (IoU 0.5:0.95)")
    top.legend(fontsize="small")
    top.grid(alpha=0.3)
    bottom.set_ylabel("validation loss")
    bottom.set_xlabel("training steps (epoch × steps per epoch)")
    bottom.grid(alpha=0.3)
    top.set_title("Learning curves (circle: the kept epoch)")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="PNG")
    args = parser.parse_args(argv)
    try:
        curves = [read_curve(folder) for folder in args.runs]
    except ValueError as error:
        print(f"learning_curve: {error}", file=sys.stderr)
        return 2
    print(plot(curves, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
