"""Train the bundled DSB 2018 nuclei U-Net, or the ablation of its four variants.

The DSB 2018 stage-1 training set (561 samples, ``../shared/data/dsb2018`` next to the
repository) is split once into train / validation: 15 % of the sorted sample ids, chosen
with a fixed seed, recorded in ``scripts/dsb2018_split.json`` (created on the first run,
reused afterwards). Every variant trains on the same split with the same budget:

    python scripts/train_bundled_model.py --variant 3class-weighted --epochs 40 --install
    python scripts/train_bundled_model.py --ablation --max-seconds 1800 --outdir runs/abl
    python scripts/train_bundled_model.py --smoke --ablation --outdir /tmp/smoke  # seconds

The training options are those of ``napari-unet-weights train`` (one per
:class:`~napari_unet_weights.unet.config.TrainConfig` field; ``--filters`` is also
``--base-filters``), with a longer budget by default (:data:`DEFAULTS`); the variant sets
the classes and the weight map.

``--ablation`` writes ``ablation.md`` and ``ablation.json`` (validation mAP of IoU,
0.5:0.95, per image then averaged) and one ``<variant>.keras`` per variant to
``--outdir``; ``--install`` copies the best model (or the one ``--variant``) to
``src/napari_unet_weights/unet/models/dsb2018_nuclei.keras``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_unet_weights.unet.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "dsb2018"
SPLIT_FILE = REPO / "scripts" / "dsb2018_split.json"
INSTALL_PATH = REPO / "src" / "napari_unet_weights" / "unet" / "models" / "dsb2018_nuclei.keras"
VARIANTS = {
    "3class-weighted": {"n_classes": 3, "use_weights": True},
    "3class-plain": {"n_classes": 3, "use_weights": False},
    "2class-weighted": {"n_classes": 2, "use_weights": True},
    "2class-plain": {"n_classes": 2, "use_weights": False},
}
#: This script's budget, where it differs from TrainConfig's defaults.
DEFAULTS = {"epochs": 40, "steps_per_epoch": 100, "early_stopping_patience": 10,
            "val_map_every": 5}
SPLIT_SEED = 2018
VALIDATION_FRACTION = 0.15


def make_split(data: Path, path: Path = SPLIT_FILE) -> dict:
    """Read the recorded split, or create it (15 % of the sorted ids, fixed seed)."""
    if path.exists():
        return json.loads(path.read_text())
    ids = sorted(p.stem for p in (data / "images").glob("*.tif"))
    if not ids:
        raise SystemExit(f"no images in {data / 'images'}")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(ids))
    n_val = round(len(ids) * VALIDATION_FRACTION)
    split = {
        "dataset": "DSB 2018 stage 1 training (561 samples)",
        "rule": f"{VALIDATION_FRACTION:.0%} of the sorted ids, numpy default_rng({SPLIT_SEED})"
                ".permutation",
        "seed": SPLIT_SEED,
        "validation": sorted(ids[i] for i in order[:n_val]),
        "train": sorted(ids[i] for i in order[n_val:]),
    }
    path.write_text(json.dumps(split, indent=1) + "\n")
    print(f"wrote the split to {path}: {len(split['train'])} train, "
          f"{len(split['validation'])} validation", file=sys.stderr)
    return split


def link_subset(data: Path, ids: list[str], folder: Path) -> Path:
    """``folder/images`` and ``folder/labels`` with symbolic links to the chosen ids."""
    for kind in ("images", "labels"):
        (folder / kind).mkdir(parents=True)
        for sample_id in ids:
            (folder / kind / f"{sample_id}.tif").symlink_to(data / kind / f"{sample_id}.tif")
    return folder


def print_progress(info: dict) -> None:
    if info["stage"] == "epoch":
        val_map = "-" if info["val_map"] is None else f"{info['val_map']:.4f}"
        print(f"  epoch {info['epoch']}/{info['epochs']} loss {info['loss']:.4f} "
              f"val_loss {info['val_loss']:.4f} val_mAP {val_map}", file=sys.stderr, flush=True)
    elif info["step"] == info["steps"] or info["step"] % 25 == 0:
        print(f"    step {info['step']}/{info['steps']} loss {info['loss']:.4f}",
              file=sys.stderr, flush=True)


def train_variant(name: str, train_dir: Path, val_dir: Path, args, outdir: Path) -> dict:
    from napari_unet_weights.unet import train

    print(f"== {name}", file=sys.stderr)
    config = TrainConfig.from_arguments(args, **VARIANTS[name])
    result = train(
        train_dir, config=config, validation=val_dir,
        checkpoint=outdir / f"{name}.checkpoint.keras", out=outdir / f"{name}.keras",
        progress=print_progress,
    )
    per_threshold = {r["threshold"]: r["map"] for r in result.validation["per_threshold"]}
    training = result.model.metadata["training"]
    row = {
        "variant": name, **VARIANTS[name],
        "val_map": round(result.validation["map"], 4),
        "val_map_default_postprocess": round(result.validation["map_default_postprocess"], 4),
        "ap_0.5": round(per_threshold.get(0.5, float("nan")), 4),
        "ap_0.75": round(per_threshold.get(0.75, float("nan")), 4),
        "ap_0.9": round(per_threshold.get(0.9, float("nan")), 4),
        "postprocess": result.validation["postprocess"],
        "epochs_run": training["epochs_run"], "best_epoch": training["best_epoch"],
        "steps": training["epochs_run"] * args.steps_per_epoch,
        "seconds": training["seconds"],
        "device": result.device, "file": str(result.path),
        "file_mb": round(result.path.stat().st_size / 1e6, 2),
    }
    print(f"== {name}: validation mAP {row['val_map']:.4f} ({row['seconds']:.0f} s, "
          f"{result.device})", file=sys.stderr)
    return row


def write_table(rows: list[dict], args, outdir: Path, split: dict) -> None:
    header = ("| variant | classes | weight map | val mAP 0.5:0.95 | (default post-proc.) | "
              "AP@0.5 | AP@0.75 | AP@0.9 | epochs (best) | time | MB |")
    lines = [
        f"Validation split: {len(split['validation'])} of "
        f"{len(split['validation']) + len(split['train'])} DSB 2018 images "
        "(scripts/dsb2018_split.json). Same budget for every variant: "
        f"{args.epochs} epochs x {args.steps_per_epoch} steps x batch {args.batch_size} of "
        f"{args.patch_size}^2 patches"
        + (f", at most {args.max_seconds:g} s" if args.max_seconds else "")
        + f"; depth {args.depth}, base filters {args.base_filters}, w0 {args.w0}, "
        f"sigma {args.sigma}. mAP: per image, then averaged; post-processing tuned on the "
        "validation split.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['n_classes']} | {'yes' if r['use_weights'] else 'no'} | "
            f"{r['val_map']:.4f} | {r['val_map_default_postprocess']:.4f} | {r['ap_0.5']:.4f} "
            f"| {r['ap_0.75']:.4f} | {r['ap_0.9']:.4f} | {r['epochs_run']} ({r['best_epoch']}) "
            f"| {r['seconds']:.0f} s | {r['file_mb']} |"
        )
    (outdir / "ablation.md").write_text("\n".join(lines) + "\n")
    (outdir / "ablation.json").write_text(json.dumps(
        {"settings": {k: v for k, v in vars(args).items() if k not in ("data", "outdir")},
         "results": rows}, indent=1, default=str) + "\n")
    print("\n".join(lines))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--variant", choices=VARIANTS, default="3class-weighted")
    which.add_argument("--ablation", action="store_true", help="train all four variants")
    parser.add_argument("--outdir", type=Path, default=REPO / "runs" / "bundled")
    TrainConfig.add_arguments(parser, defaults=DEFAULTS,
                              exclude=("n_classes", "use_weights", "validation_fraction"))
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N train and N/4 validation ids (testing)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few steps on a few images: shows the pipeline end to end")
    parser.add_argument("--install", action="store_true",
                        help=f"copy the best model to {INSTALL_PATH.relative_to(REPO)}")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.steps_per_epoch, args.batch_size, args.patch_size = 1, 2, 2, 64
        args.limit, args.val_map_every = args.limit or 8, 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"no DSB 2018 data at {args.data} (expected images/ and labels/)", file=sys.stderr)
        return 2
    split = make_split(args.data)
    train_ids, val_ids = split["train"], split["validation"]
    if args.limit:
        train_ids, val_ids = train_ids[:args.limit], val_ids[:max(1, args.limit // 4)]
    args.outdir.mkdir(parents=True, exist_ok=True)
    names = list(VARIANTS) if args.ablation else [args.variant]
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        train_dir = link_subset(args.data, train_ids, Path(tmp) / "train")
        val_dir = link_subset(args.data, val_ids, Path(tmp) / "validation")
        rows = [train_variant(name, train_dir, val_dir, args, args.outdir) for name in names]
    write_table(rows, args, args.outdir, {"train": train_ids, "validation": val_ids})
    best = max(rows, key=lambda r: r["val_map"])
    print(f"best: {best['variant']} (validation mAP {best['val_map']:.4f}); total "
          f"{time.monotonic() - start:.0f} s", file=sys.stderr)
    if args.install:
        INSTALL_PATH.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best["file"], INSTALL_PATH)
        print(f"installed {best['file']} as {INSTALL_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
