"""Weighted vs plain loss over seeds: mean ± standard deviation from evaluate_model.py output.

    python scripts/evaluate_model.py runs/seeds/*.keras --part test --json runs/seeds/test.json
    python scripts/seed_table.py runs/seeds/test.json

Groups the models by the part of their file name before ``-seed`` (``weighted-seed1.keras``
→ ``weighted``) and prints a Markdown table: overall mAP, crowded and other images, each
modality; mean ± sample standard deviation over the seeds, and the difference of the means.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

COLUMNS = {
    "all": lambda s: s["map"],
    "AP@0.9": lambda s: s["ap_0.9"],
    "crowded": lambda s: s["crowded"]["map"],
    "not crowded": lambda s: s["not_crowded"]["map"],
    "fluorescence": lambda s: s["per_modality"]["fluorescence"]["map"],
    "brightfield": lambda s: s["per_modality"]["brightfield"]["map"],
    "H&E": lambda s: s["per_modality"]["he"]["map"],
}


def grouped(results: dict) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for path, scores in sorted(results.items()):
        groups[Path(path).stem.split("-seed")[0]].append(scores)
    return dict(groups)


def table(results: dict) -> str:
    groups = grouped(results)
    lines = ["| loss | seeds | " + " | ".join(COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    means = {}
    for name, runs in groups.items():
        values = {c: np.array([get(s) for s in runs]) for c, get in COLUMNS.items()}
        means[name] = {c: v.mean() for c, v in values.items()}
        cells = [f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"
                 for v in values.values()]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    if {"weighted", "plain"} <= means.keys():
        difference = [f"{means['weighted'][c] - means['plain'][c]:+.3f}" for c in COLUMNS]
        lines.append("| weighted − plain | | " + " | ".join(difference) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON written by evaluate_model.py --json")
    args = parser.parse_args(argv)
    print(table(json.loads(args.results.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
