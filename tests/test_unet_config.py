"""TrainConfig: defaults, checks with clear errors, model metadata, the command line (no TF)."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from napari_unet_weights.unet.config import TrainConfig, TrainConfigError
from napari_unet_weights.unet.model_file import read_metadata

#: The defaults as the README and train()'s docstring document them.
DOCUMENTED_DEFAULTS = {
    "n_classes": 3, "w0": 10.0, "sigma": 5.0, "use_weights": True, "epochs": 30,
    "steps_per_epoch": 50, "batch_size": 8, "patch_size": 128, "validation_fraction": 0.15,
    "learning_rate": 1e-3, "depth": 4, "base_filters": 16, "batch_norm": True, "dropout": 0.0,
    "augment": True, "augment_intensity": True, "augment_objects": True,
    "augment_noise": True, "augment_blur": True, "augment_scale": 2.0, "augment_stain": True,
    "class_weights": "none", "colour": "mean",
    "lr_schedule": "cosine", "select_by": "val_map", "seed": 0,
    "early_stopping_patience": 8, "val_map_every": 1,
    "max_seconds": None, "tune_postprocess": True,
}


def test_defaults_are_the_documented_ones():
    assert TrainConfig().to_metadata() == DOCUMENTED_DEFAULTS
    assert {p.name: p.default for p in TrainConfig.fields()} == DOCUMENTED_DEFAULTS


def test_a_form_can_build_a_config_from_the_parameters():
    """What the widget does: one control per parameter, its default, then TrainConfig(**)."""
    values = {}
    for parameter in TrainConfig.fields():
        assert parameter.kind in (int, float, bool, str)
        if parameter.kind is str:
            assert parameter.default in parameter.choices
        assert parameter.help and parameter.flag.startswith("--")
        values[parameter.name] = parameter.default
    assert TrainConfig(**values) == TrainConfig()
    assert [f.name for f in dataclasses.fields(TrainConfig)] == list(values)
    sigma = TrainConfig.parameter("sigma")
    assert (sigma.minimum, sigma.exclusive_minimum, sigma.maximum) == (0.0, True, None)
    assert TrainConfig.parameter("n_classes").choices == (2, 3)
    fraction = TrainConfig.parameter("validation_fraction")
    assert (fraction.minimum, fraction.maximum) == (0.0, 1.0)
    assert fraction.exclusive_minimum and fraction.exclusive_maximum


@pytest.mark.parametrize(("name", "value", "message"), [
    ("n_classes", 4, "n_classes must be 2 or 3, got 4."),
    ("epochs", 0, "epochs must be an integer >= 1, got 0."),
    ("epochs", 2.5, "epochs must be an integer >= 1, got 2.5."),
    ("epochs", True, "epochs must be an integer >= 1, got True."),
    ("steps_per_epoch", "50", "steps_per_epoch must be an integer >= 1, got '50'."),
    ("w0", -1, "w0 must be a number >= 0, got -1."),
    ("w0", float("nan"), "w0 must be a number >= 0, got nan."),
    ("sigma", 0, "sigma must be a number > 0, got 0."),
    ("learning_rate", 0.0, "learning_rate must be a number > 0, got 0.0."),
    ("validation_fraction", 1.0, "validation_fraction must be a number in (0, 1), got 1.0."),
    ("dropout", 1, "dropout must be a number in [0, 1), got 1."),
    ("seed", -1, "seed must be an integer >= 0, got -1."),
    ("use_weights", "yes", "use_weights must be True or False, got 'yes'."),
    ("augment", 1, "augment must be True or False, got 1."),
    ("max_seconds", 0, "max_seconds must be a number > 0 or None (no limit), got 0."),
    ("colour", "eosin", "colour must be 'mean' or 'hematoxylin', got 'eosin'."),
    ("lr_schedule", None, "lr_schedule must be 'constant' or 'cosine', got None."),
    ("select_by", 1, "select_by must be 'val_loss' or 'val_map', got 1."),
    ("class_weights", "inverse", "class_weights must be 'balanced' or 'none', got 'inverse'."),
])
def test_a_bad_value_is_named_with_what_is_allowed(name, value, message):
    with pytest.raises(TrainConfigError) as caught:
        TrainConfig(**{name: value})
    assert str(caught.value) == message
    assert caught.value.problems == {name: message}
    assert isinstance(caught.value, ValueError)  # callers catching ValueError still work


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(TrainConfigError) as caught:
        TrainConfig(epochs=0, sigma=-1, use_weights=None)
    assert set(caught.value.problems) == {"epochs", "sigma", "use_weights"}
    assert "epochs must be" in str(caught.value) and "sigma must be" in str(caught.value)


def test_patch_size_must_fit_the_depth():
    with pytest.raises(TrainConfigError, match=r"patch_size must be a multiple of 2\*\*depth "
                                               r"= 16 \(depth 4\), got 100: e\.g\. 96 or 112"):
        TrainConfig(patch_size=100)
    with pytest.raises(TrainConfigError, match=r"= 8 \(depth 3\), got 4: e\.g\. 8\."):
        TrainConfig(patch_size=4, depth=3)
    assert TrainConfig(patch_size=24, depth=3).multiple == 8


def test_numbers_are_converted_to_the_parameter_type():
    config = TrainConfig(epochs=30.0, w0=np.int64(7), seed=np.uint8(3), use_weights=np.bool_(0),
                         max_seconds=60)
    assert (config.epochs, config.w0, config.seed, config.max_seconds) == (30, 7.0, 3, 60.0)
    assert type(config.epochs) is int and type(config.w0) is float
    assert type(config.seed) is int and type(config.max_seconds) is float
    assert config.use_weights is False


def test_replace_checks_again_and_refuses_unknown_names():
    config = TrainConfig(epochs=5)
    assert config.replace(depth=2, patch_size=36).patch_size == 36
    assert config.epochs == 5  # immutable: replace made a copy
    with pytest.raises(TrainConfigError, match="depth must be an integer >= 1"):
        config.replace(depth=0)
    with pytest.raises(TypeError, match=r"unknown training parameter 'epoch' \(did you mean "
                                        r"'epochs'\?\); the parameters are: n_classes, w0, "):
        config.replace(epoch=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3


def test_metadata_round_trip_through_json():
    config = TrainConfig(n_classes=2, w0=3.5, use_weights=False, epochs=7, patch_size=64,
                         depth=3, max_seconds=90.0, tune_postprocess=False,
                         colour="hematoxylin", lr_schedule="cosine", select_by="val_map",
                         class_weights="none")
    training = json.loads(json.dumps({**config.to_metadata(), "epochs_run": 7,
                                      "device": "CPU", "checkpoint": True}))
    assert TrainConfig.from_metadata({"training": training}) == config


def test_the_bundled_model_records_its_configuration():
    config = TrainConfig.from_metadata(read_metadata())
    assert (config.n_classes, config.w0, config.sigma) == (3, 10.0, 5.0)
    assert (config.epochs, config.steps_per_epoch, config.batch_size) == (200, 80, 8)
    assert (config.depth, config.base_filters, config.val_map_every) == (4, 16, 8)
    assert config.augment and config.augment_scale == 2.0  # the issue 18 model's recipe
    assert (config.colour, config.class_weights, config.lr_schedule, config.select_by) == (
        "hematoxylin", "none", "cosine", "val_map")


def test_without_a_training_entry_the_model_sections_are_read():
    metadata = {"n_classes": 2,
                "architecture": {"type": "unet2d", "depth": 3, "base_filters": 8,
                                 "batch_norm": False, "dropout": 0.25, "multiple": 8},
                "weights": {"w0": 4.0, "sigma": 2.0, "use_weights": True,
                            "class_weights": "none"},
                "input": {"mode": "gray", "colour": "hematoxylin"}}
    config = TrainConfig.from_metadata(metadata)
    assert config == TrainConfig(n_classes=2, depth=3, base_filters=8, batch_norm=False,
                                 dropout=0.25, w0=4.0, sigma=2.0, class_weights="none",
                                 colour="hematoxylin", lr_schedule="constant",
                                 select_by="val_loss", augment_intensity=False,
                                 augment_objects=False, augment_noise=False,
                                 augment_blur=False, augment_scale=1.0,
                                 augment_stain=False)  # what training did before


def test_a_model_from_before_the_choices_existed_reads_as_it_was_trained():
    config = TrainConfig.from_metadata({"training": {"epochs": 3}})
    assert (config.class_weights, config.colour, config.lr_schedule, config.select_by) == (
        "balanced", "mean", "constant", "val_loss")


def test_a_bad_recorded_value_is_named():
    with pytest.raises(TrainConfigError, match="n_classes must be 2 or 3, got 5"):
        TrainConfig.from_metadata({"training": {"n_classes": 5}})
    with pytest.raises(TrainConfigError, match="'training' entry must be a mapping, got list"):
        TrainConfig.from_metadata({"training": [1, 2]})


# -- the command line ---------------------------------------------------------------------
def parser_with_options(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test", exit_on_error=True)
    TrainConfig.add_arguments(parser, **kwargs)
    return parser


def test_options_give_the_config():
    parser = parser_with_options()
    assert TrainConfig.from_arguments(parser.parse_args([])) == TrainConfig()
    args = parser.parse_args(["--classes", "2", "--no-weights", "--steps", "7", "--lr", "0.01",
                              "--filters", "8", "--patience", "3", "--max-seconds", "60",
                              "--no-tune", "--depth", "3", "--patch-size", "64",
                              "--val-fraction", "0.25", "--no-augment", "--dropout", "0.1",
                              "--colour", "hematoxylin", "--lr-schedule", "cosine",
                              "--select-by", "val_map", "--class-weights", "none"])
    assert TrainConfig.from_arguments(args) == TrainConfig(
        n_classes=2, use_weights=False, steps_per_epoch=7, learning_rate=0.01, base_filters=8,
        early_stopping_patience=3, max_seconds=60.0, tune_postprocess=False, depth=3,
        patch_size=64, validation_fraction=0.25, augment=False, dropout=0.1,
        colour="hematoxylin", lr_schedule="cosine", select_by="val_map", class_weights="none")
    # each option also takes the Python name
    args = parser.parse_args(["--steps-per-epoch", "9", "--base-filters", "4",
                              "--learning-rate", "0.5", "--early-stopping-patience", "2"])
    config = TrainConfig.from_arguments(args)
    assert (config.steps_per_epoch, config.base_filters) == (9, 4)
    assert (config.learning_rate, config.early_stopping_patience) == (0.5, 2)


def test_a_bad_option_is_refused_by_the_parser_with_the_rule(capsys):
    parser = parser_with_options()
    for argv, message in ((["--epochs", "0"], "epochs must be an integer >= 1, got 0."),
                          (["--epochs", "ten"], "'ten' is not an integer"),
                          (["--classes", "4"], "n_classes must be 2 or 3, got 4."),
                          (["--colour", "eosin"], "invalid choice: 'eosin'")):
        with pytest.raises(SystemExit) as caught:
            parser.parse_args(argv)
        assert caught.value.code == 2
        assert message in capsys.readouterr().err


def test_option_defaults_can_change_and_options_be_left_out():
    parser = parser_with_options(defaults={"epochs": 40, "steps_per_epoch": 100},
                                 exclude=("n_classes", "use_weights"))
    args = parser.parse_args([])
    assert (args.epochs, args.steps_per_epoch) == (40, 100)
    assert not hasattr(args, "n_classes")
    assert TrainConfig.from_arguments(args, n_classes=2).n_classes == 2
    help_text = parser.format_help()
    assert "--classes" not in help_text and "(default: 40)" in help_text
    with pytest.raises(TypeError, match="unknown training parameter 'epoch'"):
        parser_with_options(defaults={"epoch": 3})
