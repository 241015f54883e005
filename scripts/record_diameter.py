"""Record the median nucleus diameter of a model's training labels in its model file.

    python scripts/record_diameter.py                      # the bundled model, DSB 2018 train
    python scripts/record_diameter.py my.keras --labels my_training/labels
    python scripts/record_diameter.py --dry-run            # print it, change nothing

``predict`` / ``segment(..., diameter=...)`` resize an image so that its nuclei have the
size the model was trained on: the median over the training objects of the equivalent
diameter ``2·sqrt(area/π)`` (:func:`napari_unet_weights.unet.diameter.diameter_record`).
Models trained now record it themselves (``metadata["object_diameter"]``); this script
adds it to older files, in place (:func:`~napari_unet_weights.unet.model_file.record_metadata`,
as ``evaluate_model.py --record`` does: the network is not touched). By default: the
bundled model, measured on the recorded train split of DSB 2018 (each train image once;
training oversampled some, which the figure does not weigh).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dsb2018_split import DEFAULT_DATA, SPLIT_FILE, load_split
from napari_unet_weights.unet.diameter import diameter_record
from napari_unet_weights.unet.model_file import BUNDLED_MODEL, record_metadata


def dsb_train_record(data: Path = DEFAULT_DATA) -> dict:
    """The ``object_diameter`` record of the DSB 2018 train split's labels."""
    import tifffile

    ids = load_split(data)["train"]
    labels = (tifffile.imread(data / "labels" / f"{sample_id}.tif") for sample_id in ids)
    return diameter_record(labels, of=f"training labels: the {len(ids)} DSB 2018 train "
                                      f"images of {SPLIT_FILE.name}")


def folder_record(folder: Path) -> dict:
    """The ``object_diameter`` record of every label file in ``folder``."""
    from napari_unet_weights.io.files import read_labels

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no label files in {folder}")
    return diameter_record((read_labels(p) for p in files),
                           of=f"training labels: the {len(files)} files of {folder.name}/")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=BUNDLED_MODEL,
                        help="the .keras model file (default: the bundled model)")
    parser.add_argument("--labels", type=Path,
                        help="a folder of the model's training labels (default: the DSB "
                        "2018 train split)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the DSB 2018 folder (images/, labels/)")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args(argv)
    record = folder_record(args.labels) if args.labels else dsb_train_record(args.data)
    print(f"{args.model}: median nucleus diameter {record['median']} px over "
          f"{record['n_objects']} objects ({record['of']})")
    if record["median"] is None:
        raise SystemExit("no objects: nothing recorded")
    if not args.dry_run:
        record_metadata(args.model, object_diameter=record)
        print(f"recorded in {args.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
