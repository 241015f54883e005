"""Count the annotation problems in the 561 DSB 2018 stage 1 training labels.

    python scripts/dsb2018_label_problems.py                      # ../shared/data/dsb2018
    python scripts/dsb2018_label_problems.py --json docs/model-runs/dsb2018-label-problems.json

Runs :func:`napari_unet_weights.labels.checks.check_labels` (all problems, ``--min-size``
pixels, default 10) on every ``labels/<id>.tif`` and prints a Markdown table: per problem,
the rows found, the images with at least one, and the nuclei concerned; then the images
with the most of each problem, to look at (id, object, box). ``--json`` writes the
figures, every row of the problems that are rare (all but "touching") and the touching
pairs per image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import tifffile

from napari_unet_weights.labels.checks import PROBLEMS, check_labels

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018"


def modality(entry: dict) -> str:
    return "fluorescence" if entry.get("grayscale") else "colour (brightfield / H&E)"


def check_all(folder: Path, min_size: float) -> tuple[dict, list[dict], float]:
    """Per image its counts; the rows of every problem; the seconds spent checking."""
    index = json.loads((folder / "index.json").read_text())
    images, rows, seconds = {}, [], 0.0
    for sample in sorted(index):
        labels = tifffile.imread(folder / "labels" / f"{sample}.tif")
        start = time.perf_counter()
        report = check_labels(labels, min_size=min_size)
        seconds += time.perf_counter() - start
        images[sample] = {"shape": list(labels.shape), "objects": report.n_objects,
                          "modality": modality(index[sample]),
                          **{name: int(n) for name, n in report.summary.items()}}
        for _, row in report.problems.iterrows():
            rows.append({"image": sample, "label": int(row["label"]),
                         "problem": str(row["problem"]), "other": int(row["other"]),
                         "area": int(row["area"]), "bbox": list(row["bbox"]),
                         "detail": row["detail"]})
    return images, rows, seconds


def totals(images: dict, rows: list[dict]) -> dict:
    result = {}
    for name in PROBLEMS:
        chosen = [r for r in rows if r["problem"] == name]
        nuclei = {(r["image"], r["label"]) for r in chosen}
        if name == "touching":
            nuclei |= {(r["image"], r["other"]) for r in chosen}
        result[name] = {"rows": len(chosen),
                        "images": sum(1 for counts in images.values() if counts[name]),
                        "nuclei": len(nuclei)}
    return result


def by_modality(images: dict) -> dict:
    result: dict = {}
    for counts in images.values():
        group = result.setdefault(counts["modality"], {"images": 0, "objects": 0,
                                                       **dict.fromkeys(PROBLEMS, 0)})
        group["images"] += 1
        group["objects"] += counts["objects"]
        for name in PROBLEMS:
            group[name] += counts[name] > 0
    return result


def markdown(images: dict, rows: list[dict], summary: dict, min_size: float) -> str:
    n_objects = sum(c["objects"] for c in images.values())
    with_any = sum(1 for c in images.values() if any(c[name] for name in PROBLEMS))
    lines = [f"{len(images)} label images, {n_objects} nuclei, min_size {min_size:g} px: "
             f"{with_any} images with at least one problem.", "",
             "| problem | rows | images | nuclei |", "|---|---|---|---|"]
    for name, figures in summary.items():
        lines.append(f"| {name} | {figures['rows']} | {figures['images']} | "
                     f"{figures['nuclei']} |")
    lines += ["", "| modality | images | nuclei | " + " | ".join(PROBLEMS) + " |",
              "|---|---|---|" + "---|" * len(PROBLEMS)]
    for group, figures in by_modality(images).items():
        lines.append(f"| {group} | {figures['images']} | {figures['objects']} | "
                     + " | ".join(str(figures[name]) for name in PROBLEMS) + " |")
    lines += ["", "Examples (image: label, box, detail):"]
    for name in PROBLEMS:
        chosen = sorted((r for r in rows if r["problem"] == name),
                        key=lambda r: (-images[r["image"]][name], r["image"], r["label"]))
        for row in chosen[:3]:
            lines.append(f"- {name}: {row['image']} id {row['label']} box {row['bbox']}: "
                         f"{row['detail']} ({images[row['image']][name]} in this image)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("NAPARI_UNET_WEIGHTS_DSB", DEFAULT_DATA)),
                        help="the DSB 2018 folder (index.json, labels/)")
    parser.add_argument("--min-size", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="write the figures and rows here")
    args = parser.parse_args(argv)
    if not (args.data / "index.json").exists():
        sys.exit(f"DSB 2018 data not found at {args.data}")
    images, rows, seconds = check_all(args.data, args.min_size)
    summary = totals(images, rows)
    print(markdown(images, rows, summary, args.min_size))
    print(f"\nchecked in {seconds:.2f} s ({1e3 * seconds / len(images):.1f} ms per image)")
    if args.json:
        args.json.write_text(json.dumps({
            "data": "DSB 2018 stage 1 training labels (stage1_train, 561 images)",
            "min_size": args.min_size, "images": len(images),
            "nuclei": sum(c["objects"] for c in images.values()),
            "totals": summary, "by_modality": by_modality(images),
            "rows": [r for r in rows if r["problem"] != "touching"],
            "touching_pairs_per_image": {k: c["touching"] for k, c in images.items()
                                         if c["touching"]},
        }, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
