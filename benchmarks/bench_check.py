"""Speed of ``check_labels`` on the densest DSB 2018 labels, as a ratio to one
``scipy.ndimage.label`` of the same image, both run here in this process, in turn.

    python benchmarks/bench_check.py            # goal: check <= 3x one label
    python benchmarks/bench_check.py --json out.json

"Densest" twice: the images with the most nuclei (the large crowded fluorescence images)
and those with the most nuclei per pixel (small, where the check's fixed cost counts most).
The reference is ``ndi.label(labels > 0, structure=np.ones((3, 3)))``, the connected
components of the foreground with the check's own 8-connectivity. Each time is the best of
``--repeat`` rounds (label, check, check + table, in turn); "+ table" also builds the
``problems`` DataFrame. Larger images: the
densest one tiled 3 x 3, and a 3-D volume of 64 DSB label planes (checked as 3-D objects
and plane by plane).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from napari_unet_weights.labels.checks import check_labels
from reference import dsb_folder

DSB = dsb_folder()


def best_times(functions, repeat: int) -> list[float]:
    """Smallest wall time of each function over ``repeat`` rounds that call each once, in
    turn, so that all see the same load (the least disturbed call counts)."""
    best = [float("inf")] * len(functions)
    for _ in range(repeat):
        for index, function in enumerate(functions):
            start = time.perf_counter()
            function()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def densest(index: dict, count: int) -> dict[str, list[str]]:
    by_objects = sorted(index, key=lambda k: -index[k]["n_objects"])
    by_density = sorted(index, key=lambda k: -index[k]["n_objects"]
                        / (index[k]["shape"][0] * index[k]["shape"][1]))
    return {"most nuclei": by_objects[:count], "most nuclei per pixel": by_density[:count]}


def measure(name: str, labels: np.ndarray, repeat: int, **options) -> dict:
    structure = np.ones((3,) * (options.get("spatial_dims", labels.ndim)), dtype=bool)
    if structure.ndim < labels.ndim:  # plane by plane: label each plane
        def reference():
            for plane in labels.reshape(-1, *labels.shape[-structure.ndim:]):
                ndi.label(plane > 0, structure)
    else:
        def reference():
            ndi.label(labels > 0, structure)
    label_s, check_s, table_s = best_times(
        [reference, lambda: check_labels(labels, **options),
         lambda: check_labels(labels, **options).problems], repeat)
    report = check_labels(labels, **options)
    row = {"name": name, "shape": list(labels.shape), "objects": report.n_objects,
           "rows": len(report), "label_ms": 1e3 * label_s, "check_ms": 1e3 * check_s,
           "check_with_table_ms": 1e3 * table_s, "ratio": check_s / label_s,
           "ratio_with_table": table_s / label_s}
    print(f"  {name:28s} {'x'.join(map(str, labels.shape)):>12s} {report.n_objects:5d} "
          f"{len(report):5d} {row['label_ms']:8.2f} {row['check_ms']:8.2f} "
          f"{row['ratio']:6.2f}x {row['check_with_table_ms']:8.2f} "
          f"{row['ratio_with_table']:6.2f}x")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3, help="images per kind of density")
    parser.add_argument("--repeat", type=int, default=30, help="runs per timing")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (DSB / "index.json").exists():
        sys.exit(f"DSB 2018 data not found at {DSB} (set NAPARI_UNET_WEIGHTS_DSB)")
    index = json.loads((DSB / "index.json").read_text())
    print(f"{'':30s}{'shape':>12s} {'objs':>5s} {'rows':>5s} {'label ms':>8s} "
          f"{'check ms':>8s} {'ratio':>7s} {'+ table':>8s} {'ratio':>7s}")
    results = []
    for kind, samples in densest(index, args.count).items():
        print(kind)
        for sample in samples:
            labels = tifffile.imread(DSB / "labels" / f"{sample}.tif")
            results.append(measure(sample, labels, args.repeat) | {"kind": kind})
    print("larger")
    first = densest(index, 1)["most nuclei"][0]
    labels = tifffile.imread(DSB / "labels" / f"{first}.tif")
    tiled = np.tile(labels.astype(np.uint32), (3, 3))
    tiled += (np.arange(9, dtype=np.uint32).reshape(3, 3).repeat(labels.shape[0], 0)
              .repeat(labels.shape[1], 1) * (int(labels.max()) + 1)) * (tiled > 0)
    results.append(measure(f"{first} tiled 3x3", tiled, max(3, args.repeat // 10))
                   | {"kind": "larger"})
    planes = [tifffile.imread(DSB / "labels" / f"{k}.tif") for k in sorted(index)
              if index[k]["shape"] == [256, 256]][:64]
    volume = np.stack(planes).astype(np.uint16)
    results.append(measure("64 planes 256x256, 3-D", volume, max(3, args.repeat // 10))
                   | {"kind": "larger"})
    results.append(measure("64 planes 256x256, per plane", volume, max(3, args.repeat // 10),
                           spatial_dims=2) | {"kind": "larger"})
    print("all 561 labels, summed")
    every = [tifffile.imread(DSB / "labels" / f"{k}.tif") for k in sorted(index)]
    structure = np.ones((3, 3), dtype=bool)
    label_s, check_s = best_times([lambda: [ndi.label(x > 0, structure) for x in every],
                                   lambda: [check_labels(x) for x in every]],
                                  max(3, args.repeat // 20))
    results.append({"name": "all DSB labels", "kind": "all", "label_ms": 1e3 * label_s,
                    "check_ms": 1e3 * check_s, "ratio": check_s / label_s})
    print(f"  {len(every)} images: label {1e3 * label_s:.0f} ms, check {1e3 * check_s:.0f} ms: "
          f"{check_s / label_s:.2f}x")
    worst = max(r["ratio"] for r in results if r["kind"] not in ("larger", "all"))
    print(f"worst ratio on the densest DSB labels: {worst:.2f}x (goal <= 3x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
