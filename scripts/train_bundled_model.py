"""Train the bundled DSB 2018 nuclei U-Net, or one run of its ablation, on the recorded split.

The 561 DSB 2018 stage-1 samples (``../shared/data/dsb2018``) are split once into train /
validation / test, stratified by modality (``scripts/dsb2018_split.py``, recorded in
``scripts/dsb2018_split.json``). Training sees the train part; validation chooses the
epoch and the post-processing (and, in the ablation, every design decision); the test
part is not read here (``scripts/evaluate_model.py`` reports on it).

    python scripts/train_bundled_model.py --name final --outdir runs/final [options] --install
    python scripts/train_bundled_model.py --smoke --outdir /tmp/smoke        # seconds
    python scripts/train_bundled_model.py --name long --run-dir runs/long --minutes 170 ...

With ``--run-dir DIR`` the run keeps its whole state in DIR (``train(run_dir=)``): the same
command again resumes it from its last checkpoint (a checkpoint every
``--checkpoint-minutes`` and whenever the call ends), with the same batches and learning
rate as an uninterrupted run; ``--minutes`` ends this call in time to validate and save
(the model of the best epoch so far). The samples are compared by name and pixels, not
by path (the temporary folders of links are made again on each call); other options
than the run's are refused, naming them. ``scripts/learning_curve.py DIR ...`` plots the
validation mAP of runs against their training steps.

The training options are those of ``napari-unet-weights train`` (one per
:class:`~napari_unet_weights.unet.config.TrainConfig` field), with this script's budget
as defaults (:data:`DEFAULTS`, the bundled model's configuration). ``--oversample
he=3,brightfield=5`` lists every training image of those modalities that many times.
Each run adds its row (validation figures, time) to ``<outdir>/runs.json`` and rewrites
``<outdir>/runs.md``; ``--install`` copies the model to
``src/napari_unet_weights/unet/models/dsb2018_nuclei.keras``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from dsb2018_split import DEFAULT_DATA, MODALITIES, load_split
from napari_unet_weights.unet.config import TrainConfig
from napari_unet_weights.unet.training.run_dir import interrupt_on_sigterm

REPO = Path(__file__).resolve().parents[1]
INSTALL_PATH = REPO / "src" / "napari_unet_weights" / "unet" / "models" / "dsb2018_nuclei.keras"
#: This script's budget and configuration, where they differ from TrainConfig's defaults.
DEFAULTS = {"epochs": 200, "steps_per_epoch": 80, "base_filters": 16,
            "early_stopping_patience": 200, "val_map_every": 8, "lr_schedule": "cosine",
            "select_by": "val_map", "colour": "hematoxylin", "class_weights": "none",
            "seed": 2}
#: This script's default ``--oversample`` (the bundled model's).
DEFAULTS_OVERSAMPLE: dict[str, int] = {"he": 3, "brightfield": 5}


def link_subset(data: Path, ids: list[str], folder: Path, copies: dict[str, int] | None = None
                ) -> Path:
    """``folder/images`` and ``folder/labels`` with symbolic links to the chosen ids
    (``copies[id]`` links of an id, for oversampling)."""
    for kind in ("images", "labels"):
        (folder / kind).mkdir(parents=True)
        for sample_id in ids:
            for copy in range((copies or {}).get(sample_id, 1)):
                name = sample_id if copy == 0 else f"{sample_id}__copy{copy}"
                (folder / kind / f"{name}.tif").symlink_to(data / kind / f"{sample_id}.tif")
    return folder


def print_progress(info: dict) -> None:
    if info["stage"] == "epoch":
        val_map = "-" if info["val_map"] is None else f"{info['val_map']:.4f}"
        print(f"  epoch {info['epoch']}/{info['epochs']} loss {info['loss']:.4f} "
              f"val_loss {info['val_loss']:.4f} val_mAP {val_map}", file=sys.stderr, flush=True)
    elif info["stage"] == "checkpoint":
        said = (f"FAILED: {info['error']}" if "error" in info
                else f"{info['mb']:.1f} MB in {info['seconds']:.1f} s")
        print(f"  checkpoint of epoch {info['epoch']}: {said}", file=sys.stderr, flush=True)


def run_row(name: str, result, args) -> dict:
    """The run's validation figures and cost, as one row of runs.json."""
    per_threshold = {r["threshold"]: r["map"] for r in result.validation["per_threshold"]}
    training = result.model.metadata["training"]
    return {
        "name": name, "oversample": args.oversample,
        "config": result.config.to_metadata(),
        "val_map": round(result.validation["map"], 4),
        "val_map_default_postprocess": round(result.validation["map_default_postprocess"], 4),
        **{f"ap_{t}": round(per_threshold.get(t, float("nan")), 4) for t in (0.5, 0.75, 0.9)},
        "postprocess": result.validation["postprocess"],
        "epochs_run": training["epochs_run"], "best_epoch": training["best_epoch"],
        "seconds": training["seconds"], "device": result.device, "file": str(result.path),
        "file_mb": round(result.path.stat().st_size / 1e6, 2),
    }


def write_runs(outdir: Path, row: dict) -> None:
    """Add ``row`` to ``runs.json`` (replacing a run of the same name); rewrite runs.md."""
    path = outdir / "runs.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if r["name"] != row["name"]] + [row]
    path.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    lines = ["| run | val mAP | default post-proc. | AP@0.5 | AP@0.75 | AP@0.9 | epochs (best) "
             "| time |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['val_map']:.4f} | {r['val_map_default_postprocess']:.4f} | "
              f"{r['ap_0.5']:.4f} | {r['ap_0.75']:.4f} | {r['ap_0.9']:.4f} | "
              f"{r['epochs_run']} ({r['best_epoch']}) | {r['seconds']:.0f} s |" for r in rows]
    (outdir / "runs.md").write_text("\n".join(lines) + "\n")


def defaults_from(model: Path | None) -> dict:
    """The configuration a model was trained with (and its run's ``--oversample``, from
    the runs.json beside it), as option defaults; this script's :data:`DEFAULTS` without."""
    if model is None:
        return {**DEFAULTS, "oversample": dict(DEFAULTS_OVERSAMPLE)}
    from napari_unet_weights.unet.model_file import read_metadata

    values = TrainConfig.from_metadata(read_metadata(model)).to_metadata()
    values.pop("validation_fraction")
    runs = model.with_name("runs.json")
    rows = json.loads(runs.read_text()) if runs.exists() else []
    values["oversample"] = next((r.get("oversample", {}) for r in rows
                                 if r["name"] == model.stem), {})
    return values


def oversampling(text: str) -> dict[str, int]:
    """``"he=3,brightfield=5"`` → ``{"he": 3, "brightfield": 5}`` (argparse type)."""
    counts = {}
    for item in filter(None, text.split(",")):
        name, _, count = item.partition("=")
        if name not in MODALITIES or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(
                f"expected MODALITY=COUNT with a modality of {MODALITIES} and a count >= 1, "
                f"got {item!r}")
        counts[name] = int(count)
    return counts


def parse_args(argv=None) -> argparse.Namespace:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config-from", type=Path)
    defaults = defaults_from(first.parse_known_args(argv)[0].config_from)
    oversample = defaults.pop("oversample", {})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-from", type=Path, metavar="MODEL.keras",
                        help="start from the configuration of this model's run (other "
                             "options change it)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--name", default="bundled", help="the run's name in runs.json")
    parser.add_argument("--outdir", type=Path, default=REPO / "runs" / "bundled")
    TrainConfig.add_arguments(parser, defaults=defaults, exclude=("validation_fraction",))
    parser.add_argument("--oversample", type=oversampling, default=oversample,
                        metavar="MODALITY=K,...",
                        help="list every training image of these modalities K times, e.g. "
                             "he=3,brightfield=5 (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N train and N/4 validation ids (testing)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few steps on a few images: shows the pipeline end to end")
    parser.add_argument("--install", action="store_true",
                        help=f"copy the model to {INSTALL_PATH.relative_to(REPO)}")
    parser.add_argument("--run-dir", type=Path, metavar="DIR",
                        help="keep the run's whole state in DIR; the same command again "
                             "resumes it from its last checkpoint")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0, metavar="M",
                        help="with --run-dir: a checkpoint at the end of an epoch once M "
                             "minutes passed since the last one, 0: every epoch (default: "
                             "%(default)s)")
    parser.add_argument("--minutes", type=float, metavar="M",
                        help="time budget of this call's training, final validation and "
                             "saving (train's finish_within; default: none)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.steps_per_epoch, args.batch_size, args.patch_size = 1, 2, 2, 64
        args.limit, args.val_map_every = args.limit or 8, 1
    return args


def main(argv=None) -> int:
    from napari_unet_weights.unet import train

    args = parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"no DSB 2018 data at {args.data} (expected images/ and labels/)", file=sys.stderr)
        return 2
    split = load_split(args.data)
    train_ids, val_ids = split["train"], split["validation"]
    if args.limit:
        train_ids, val_ids = train_ids[:args.limit], val_ids[:max(1, args.limit // 4)]
    copies = {i: args.oversample.get(split["modality"][i], 1) for i in train_ids}
    args.outdir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig.from_arguments(args)
    print(f"== {args.name}: {config}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp, interrupt_on_sigterm():
        try:
            result = train(
                link_subset(args.data, train_ids, Path(tmp) / "train", copies), config=config,
                validation=link_subset(args.data, val_ids, Path(tmp) / "validation"),
                checkpoint=args.outdir / f"{args.name}.checkpoint.keras",
                out=args.outdir / f"{args.name}.keras", progress=print_progress,
                run_dir=args.run_dir, checkpoint_minutes=args.checkpoint_minutes,
                finish_within=None if args.minutes is None else args.minutes * 60,
            )
        except ValueError as error:  # a --run-dir of another run: say what differs
            print(f"== {args.name}: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run folder has its last epoch
            hint = " (the same command resumes the run)" if args.run_dir else ""
            print(f"== {args.name}: interrupted{hint}", file=sys.stderr)
            return 130
    row = run_row(args.name, result, args)
    write_runs(args.outdir, row)
    resume = (" - time limit: the same command resumes the run"
              if result.time_limit_reached and args.run_dir else "")
    print(f"== {args.name}: validation mAP {row['val_map']:.4f} ({row['seconds']:.0f} s, "
          f"{result.device}; {row['epochs_run']} epochs){resume}", file=sys.stderr)
    if args.install:
        INSTALL_PATH.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.path, INSTALL_PATH)
        print(f"installed {result.path} as {INSTALL_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
