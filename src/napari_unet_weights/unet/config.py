"""The training configuration: every parameter of :func:`.training.train.train` in one place.

:class:`TrainConfig` holds each training parameter with its default, its limits and its
help text (in the dataclass fields' metadata, listed by :meth:`TrainConfig.fields`).
``train()``, the "Train U-Net" widget and ``napari-unet-weights train`` all read them
from here; a model file records the configuration in the ``"training"`` entry of its
metadata (:meth:`TrainConfig.to_metadata`, :meth:`TrainConfig.from_metadata`).

Bad values raise :class:`TrainConfigError` (a ``ValueError``) naming each parameter and
what it allows. Pure Python: importing this module imports neither TensorFlow nor Qt.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .targets import CLASS_NAMES

__all__ = ["Parameter", "TrainConfig", "TrainConfigError"]


class TrainConfigError(ValueError):
    """Training parameters of the wrong type or out of range.

    Attributes
    ----------
    problems : dict
        Parameter name → what is wrong with it (one sentence); the message joins them.
    """

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(" ".join(self.problems.values()))


#: What training did before these parameters existed: read for model files that lack them
#: (their defaults changed when they were added, after the issue 10 ablation).
BEFORE_THEY_EXISTED = {"class_weights": "balanced", "colour": "mean",
                       "lr_schedule": "constant", "select_by": "val_loss",
                       "augment_intensity": False, "augment_objects": False,
                       "augment_noise": False, "augment_blur": False, "augment_scale": 1.0,
                       "augment_stain": False}


def _number_text(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Parameter:
    """One training parameter as a form or the command line shows it.

    Attributes
    ----------
    name : str
        The :class:`TrainConfig` field (and ``train()`` keyword).
    kind : type
        ``int``, ``float``, ``bool`` or ``str`` (a str parameter lists its ``choices``).
    default
        The default value.
    help : str
        One line for a tooltip or ``--help``.
    flag : str
        The command-line option, e.g. ``"--steps"`` (a bool ``--x`` also has ``--no-x``).
    minimum, maximum : float or None
        Limits of a number (None: unbounded); ``exclusive_minimum`` /
        ``exclusive_maximum`` say whether the limit itself is refused.
    choices : tuple or None
        The only values allowed, if listed.
    optional : bool
        None is allowed too (``max_seconds``: no limit).
    """

    name: str
    kind: type
    default: Any
    help: str
    flag: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple | None = None
    optional: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        """The command-line options: ``flag``, then the name itself if it differs."""
        full = "--" + self.name.replace("_", "-")
        if self.kind is bool or full == self.flag:
            return (self.flag,)
        return (self.flag, full)

    def allowed(self) -> str:
        """What the parameter accepts, e.g. ``"an integer >= 1"``."""
        if self.kind is bool:
            text = "True or False"
        elif self.choices is not None:
            text = " or ".join(repr(c) if self.kind is str else str(c) for c in self.choices)
        else:
            text = "an integer" if self.kind is int else "a number"
            low, high = self.minimum, self.maximum
            if low is not None and high is not None:
                text += (f" in {'(' if self.exclusive_minimum else '['}{_number_text(low)}, "
                         f"{_number_text(high)}{')' if self.exclusive_maximum else ']'}")
            elif low is not None:
                text += f" {'>' if self.exclusive_minimum else '>='} {_number_text(low)}"
            elif high is not None:
                text += f" {'<' if self.exclusive_maximum else '<='} {_number_text(high)}"
        return text + (" or None (no limit)" if self.optional else "")

    def _problem(self, value: Any) -> TrainConfigError:
        return TrainConfigError({self.name: f"{self.name} must be {self.allowed()}, got "
                                            f"{value!r}."})

    def _converted(self, value: Any) -> Any:
        if self.kind is str:
            if not isinstance(value, str):
                raise self._problem(value)
            return value
        if self.kind is bool:
            if type(value).__name__ not in ("bool", "bool_"):  # Python's or NumPy's
                raise self._problem(value)
            return bool(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self._problem(value)
        if not math.isfinite(float(value)):
            raise self._problem(value)
        if self.kind is float:
            return float(value)
        if isinstance(value, numbers.Integral) or float(value).is_integer():
            return int(value)
        raise self._problem(value)

    def _in_range(self, value: float) -> bool:
        low, high = self.minimum, self.maximum
        return not (
            (low is not None and (value <= low if self.exclusive_minimum else value < low))
            or (high is not None and (value >= high if self.exclusive_maximum else value > high))
        )

    def check(self, value: Any) -> Any:
        """``value`` converted to ``kind``, or :class:`TrainConfigError` naming the parameter.

        Whole floats become ints for integer parameters (a spin box's 30.0 is 30); bools
        are not numbers here, nor numbers bools.
        """
        if value is None and self.optional:
            return None
        converted = self._converted(value)
        if self.choices is not None and converted not in self.choices:
            raise self._problem(value)
        if self.kind not in (bool, str) and not self._in_range(converted):
            raise self._problem(value)
        return converted


def _argument_type(parameter: Parameter) -> Callable[[str], Any]:
    """An argparse type for a number parameter: parsed, then checked by the parameter."""

    def convert(text: str) -> Any:
        if parameter.optional and text.strip().lower() == "none":
            return None
        try:
            value = int(text) if parameter.kind is int else float(text)
        except ValueError:
            kind = "an integer" if parameter.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        try:
            return parameter.check(value)
        except TrainConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _parameter(default: Any, kind: type, help_text: str, flag: str | None = None,
               **limits: Any) -> Any:
    """A :class:`TrainConfig` field; its metadata is a :class:`Parameter` less the name."""
    return field(default=default, metadata={"kind": kind, "help": help_text, "flag": flag,
                                            **limits})


@dataclass(frozen=True)
class TrainConfig:
    """Every parameter of a training run: defaults, limits and help in one place.

    ``TrainConfig(**values)`` converts (whole floats to int) and checks every value;
    :class:`TrainConfigError` lists each bad one. The object is immutable:
    :meth:`replace` makes a changed copy, checked again. Data, output paths and callbacks
    are not part of it: they are arguments of :func:`~.training.train.train`.

    Examples
    --------
    >>> config = TrainConfig(n_classes=2, epochs=5)
    >>> config.replace(patch_size=96).patch_size
    96
    >>> TrainConfig(patch_size=100)
    Traceback (most recent call last):
    ...
    napari_unet_weights.unet.config.TrainConfigError: patch_size must be a multiple of \
2**depth = 16 (depth 4), got 100: e.g. 96 or 112.
    """

    n_classes: int = _parameter(
        3, int, "2: background / object with 1-px gaps; 3: background / interior / boundary",
        "--classes", choices=tuple(CLASS_NAMES))
    w0: float = _parameter(10.0, float, "weight-map border term w0", minimum=0.0)
    sigma: float = _parameter(5.0, float, "weight-map border width σ in pixels",
                              minimum=0.0, exclusive_minimum=True)
    use_weights: bool = _parameter(
        True, bool, "weight the loss with the U-Net weight map (off: plain cross-entropy)",
        "--weights")
    epochs: int = _parameter(30, int, "epochs (early stopping may end sooner)", minimum=1)
    steps_per_epoch: int = _parameter(50, int, "batches per epoch", "--steps", minimum=1)
    batch_size: int = _parameter(8, int, "patches per batch", minimum=1)
    patch_size: int = _parameter(
        128, int, "side of the square training patches in pixels, a multiple of 2**depth",
        minimum=2)
    validation_fraction: float = _parameter(
        0.15, float, "share of the samples held out for validation, chosen with the seed "
        "(unused when a validation set is given)", "--val-fraction", minimum=0.0,
        maximum=1.0, exclusive_minimum=True, exclusive_maximum=True)
    learning_rate: float = _parameter(1e-3, float, "Adam learning rate", "--lr", minimum=0.0,
                                      exclusive_minimum=True)
    depth: int = _parameter(4, int, "U-Net depth (poolings)", minimum=1)
    base_filters: int = _parameter(16, int, "filters of the first level (doubled per level)",
                                   "--filters", minimum=1)
    batch_norm: bool = _parameter(True, bool, "batch normalisation after each convolution")
    dropout: float = _parameter(0.0, float, "dropout rate at the bottleneck (0: none)",
                                minimum=0.0, maximum=1.0, exclusive_maximum=True)
    augment: bool = _parameter(
        True, bool, "random flips, 90° rotations and intensity scale / shift / gamma")
    augment_intensity: bool = _parameter(
        True, bool, "half the patches get a gamma of 0.5-2, contrast 0.6-1.5× and an offset")
    augment_objects: bool = _parameter(
        True, bool, "half the patches get each nucleus dimmed to 0.2-1× its brightness")
    augment_noise: bool = _parameter(
        True, bool, "half the patches get Gaussian (SNR 2-20) or Poisson noise")
    augment_blur: bool = _parameter(
        True, bool, "half the patches get a Gaussian blur of sigma 0.5-2 px")
    augment_scale: float = _parameter(
        2.0, float, "half the patches are zoomed by a factor in [1/s, s] (1: never); their "
        "targets and weights come from the zoomed labels", minimum=1.0, maximum=4.0)
    augment_stain: bool = _parameter(
        True, bool, "half the colour patches get an H&E stain jitter in HED space")
    class_weights: str = _parameter(
        "none", str, "class term w_c of the weight map: 'balanced' (inverse class "
        "frequency) or 'none' (1 everywhere; only the border term weighs)",
        choices=("balanced", "none"))
    colour: str = _parameter(
        "mean", str, "network input from a colour (RGB) image: 'mean' of the channels, or "
        "'hematoxylin' (the H channel of skimage.color.rgb2hed: nuclei of H&E stains); "
        "grayscale images are used as they are", choices=("mean", "hematoxylin"))
    lr_schedule: str = _parameter(
        "cosine", str, "learning rate over the run: 'constant', or 'cosine' (decays to 0 "
        "at the last planned step)", choices=("constant", "cosine"))
    select_by: str = _parameter(
        "val_map", str, "what picks the kept epoch and drives early stopping: 'val_loss' "
        "(every epoch) or 'val_map' (the validation mAP, on the epochs that compute it)",
        choices=("val_loss", "val_map"))
    seed: int = _parameter(
        0, int, "seeds the split, the patches, the augmentation and the initial weights "
        "(same seed, same device: same model; the global random generators are left alone)",
        minimum=0)
    early_stopping_patience: int = _parameter(
        8, int, "stop after this many epochs without a lower validation loss (the best "
        "weights are kept)", "--patience", minimum=1)
    val_map_every: int = _parameter(
        1, int, "compute the validation mAP (whole images) every this many epochs", minimum=1)
    max_seconds: float | None = _parameter(
        None, float, "time budget of the fitting in seconds: stops within a batch; not a "
        "cancellation (the best weights are kept, the post-processing is tuned)",
        minimum=0.0, exclusive_minimum=True, optional=True)
    tune_postprocess: bool = _parameter(
        True, bool, "choose the post-processing thresholds on the validation set after "
        "training (off: the defaults of to_instances are recorded)", "--tune")

    # -- the parameters, for forms and the command line -------------------------------------
    @classmethod
    def fields(cls) -> tuple[Parameter, ...]:
        """Each parameter with its default, limits, help and command-line option, in order."""
        return tuple(
            Parameter(name=f.name, default=f.default,
                      **{**f.metadata, "flag": f.metadata["flag"]
                         or "--" + f.name.replace("_", "-")})
            for f in dataclasses.fields(cls)
        )

    @classmethod
    def parameter(cls, name: str) -> Parameter:
        """The :class:`Parameter` called ``name`` (KeyError if there is none)."""
        for parameter in cls.fields():
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    @classmethod
    def check_names(cls, names, where: str = "TrainConfig") -> None:
        """TypeError for names that are not parameters: the valid ones listed, a guess."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = [name for name in names if name not in valid]
        if not unknown:
            return
        guesses = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f" (did you mean {guesses[0]!r}?)" if guesses else ""
        raise TypeError(
            f"{where} got unknown training parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}{hint}; the parameters are: {', '.join(valid)}."
        )

    # -- checks ------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Convert and check every value (done on creation); raise :class:`TrainConfigError`.

        Each parameter is checked against its :class:`Parameter` limits, then
        ``patch_size`` against ``depth``: a multiple of ``2**depth``.
        """
        problems: dict[str, str] = {}
        for parameter in self.fields():
            try:
                value = parameter.check(getattr(self, parameter.name))
            except TrainConfigError as error:
                problems.update(error.problems)
            else:
                object.__setattr__(self, parameter.name, value)
        if not problems.keys() & {"patch_size", "depth"}:
            multiple = 2**self.depth
            if self.patch_size % multiple:
                lower = self.patch_size // multiple * multiple
                options = f"{lower} or {lower + multiple}" if lower else str(multiple)
                problems["patch_size"] = (
                    f"patch_size must be a multiple of 2**depth = {multiple} (depth "
                    f"{self.depth}), got {self.patch_size}: e.g. {options}."
                )
        if problems:
            raise TrainConfigError(problems)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (checked); TypeError for names that are not parameters."""
        self.check_names(changes, "TrainConfig.replace()")
        return dataclasses.replace(self, **changes)

    @property
    def multiple(self) -> int:
        """``2**depth``: what patch and image sides must be multiples of."""
        return 2**self.depth

    # -- the command line -------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *,
                      defaults: Mapping[str, Any] | None = None, exclude=()) -> None:
        """Add one option per parameter to ``parser``: its flags, help and default.

        ``defaults`` replaces some defaults (a script with its own budget); ``exclude``
        leaves parameters out. Options store under the parameter names (read them back
        with :meth:`from_arguments`); a bool ``--x`` also has ``--no-x``; a number is
        checked as it is parsed (argparse's usage error names the option).
        """
        defaults = dict(defaults or {})
        cls.check_names(defaults, "TrainConfig.add_arguments()")
        for parameter in cls.fields():
            if parameter.name in exclude:
                continue
            default = defaults.get(parameter.name, parameter.default)
            if parameter.kind is bool:
                action = parser.add_argument(*parameter.flags, dest=parameter.name,
                                             action=argparse.BooleanOptionalAction,
                                             default=default, help=parameter.help)
            elif parameter.kind is str:
                action = parser.add_argument(*parameter.flags, dest=parameter.name,
                                             default=default, choices=parameter.choices,
                                             help=parameter.help)
            else:
                action = parser.add_argument(
                    *parameter.flags, dest=parameter.name, default=default,
                    type=_argument_type(parameter),
                    metavar=parameter.flag.lstrip("-").replace("-", "_").upper(),
                    help=f"{parameter.help}; {parameter.allowed()}")
            if "%(default)" not in action.help:  # BooleanOptionalAction may add it itself
                action.help += (" (default: no limit)" if default is None
                                else " (default: %(default)s)")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, **overrides: Any) -> TrainConfig:
        """The configuration of options added by :meth:`add_arguments`, plus ``overrides``.

        Raises :class:`TrainConfigError` if the values do not go together (a
        ``--patch-size`` that is not a multiple of 2**depth).
        """
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                  if hasattr(args, f.name)}
        return cls(**{**values, **overrides})

    # -- model metadata --------------------------------------------------------------------
    def to_metadata(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict, the start of a model's ``"training"`` entry."""
        return dataclasses.asdict(self)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TrainConfig:
        """The configuration a model was trained with, from its metadata.

        Parameters
        ----------
        metadata : mapping
            A model's whole metadata (:func:`~.model_file.read_metadata`). Parameters are
            read from its ``"training"`` entry (other keys there, the run's outcome, are
            ignored); where that lacks one (older or hand-made files), from the
            ``"architecture"`` and ``"weights"`` sections and ``"n_classes"``; else what
            training did before the parameter existed (:data:`BEFORE_THEY_EXISTED`), or
            the default.

        Raises
        ------
        TrainConfigError
            If a recorded value is not allowed, or an entry is not a mapping.
        """
        sections = {key: metadata.get(key) or {} for key in ("training", "architecture",
                                                              "weights")}
        bad = [key for key, section in sections.items() if not isinstance(section, Mapping)]
        if bad:
            raise TrainConfigError({key: f"the metadata's {key!r} entry must be a mapping, "
                                         f"got {type(sections[key]).__name__}." for key in bad})
        described = {"n_classes": metadata.get("n_classes"),
                     **{key: sections["architecture"].get(key)
                        for key in ("depth", "base_filters", "batch_norm", "dropout")},
                     **{key: sections["weights"].get(key) for key in ("w0", "sigma",
                                                                      "use_weights",
                                                                      "class_weights")},
                     "colour": (metadata.get("input") or {}).get("colour")}
        values = {}
        for name in (f.name for f in dataclasses.fields(cls)):
            if name in sections["training"]:
                values[name] = sections["training"][name]
            elif described.get(name) is not None:
                values[name] = described[name]
            elif name in BEFORE_THEY_EXISTED:
                values[name] = BEFORE_THEY_EXISTED[name]
        return cls(**values)
