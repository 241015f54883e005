"""Training's time: the clock it reads and its time budgets (one home for both).

Every time training reads goes through one :data:`Clock`: the fitting limit
``max_seconds``, the budget of the whole call ``finish_within`` (``--minutes`` on the
command line), the checkpoint interval of a run folder (:mod:`.run_dir`) and the seconds
that the model file and the run folder record. It is ``time.monotonic`` unless the caller
passes another one: ``train(..., clock=...)``, ``open_run(..., clock=...)``, the command's
``run(args, clock=...)``. The tests pass a fake clock that they advance per batch or per
epoch (from the ``progress`` callback) and assert exactly where training stops, without
sleeping and without measuring wall time.

:class:`TimeBudget` decides when fitting must stop. No TensorFlow, no numpy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MONOTONIC", "SAVE_SECONDS", "Clock", "TimeBudget"]

#: ``clock()``: seconds on a clock that never goes back (only differences count).
Clock = Callable[[], float]
#: The clock training reads unless it is given another one.
MONOTONIC: Clock = time.monotonic
#: Seconds kept for exporting and saving the model after the final validation.
SAVE_SECONDS = 3.0


@dataclass
class TimeBudget:
    """The time budgets of one training call, and the durations they keep time for.

    Fitting stops after the batch at whose end :meth:`batch_ends` finds it past
    ``deadline``, or finds that ``end_by`` would be overrun: between two checks a batch
    runs (``step_seconds``, the last one measured) and, at most once, the end of an
    epoch (``epoch_end_seconds``, the longest measured: Keras's validation, the
    validation mAP, a checkpoint); after fitting, :meth:`reserve` is needed for the
    export copy, the final validation and saving.

    Attributes
    ----------
    clock : Clock
        What every time is read from.
    started : float
        ``clock()`` when the call started.
    end_by : float or None
        When the whole call must have returned (``finish_within`` after ``started``).
    deadline : float or None
        When fitting must stop (``max_seconds`` after fitting began).
    final_scorings : int
        How many times the final validation scores the validation images (with tuning:
        once per candidate).
    build_seconds, predict_seconds, score_seconds : float
        The last measured build of the network, prediction and scoring of the validation
        images.
    step_seconds : float
        The last batch's, from its start to its check (the progress callback included).
    epoch_end_seconds : float
        The longest end of an epoch, from the last batch's check to the epoch's end.
    """

    clock: Clock = MONOTONIC
    started: float = 0.0
    end_by: float | None = None
    deadline: float | None = None
    final_scorings: int = 1
    build_seconds: float = 0.0
    predict_seconds: float = 0.0
    score_seconds: float = 0.0
    step_seconds: float = 0.0
    epoch_end_seconds: float = 0.0
    _batch_started: float = field(default=0.0, repr=False)
    _checked: float = field(default=0.0, repr=False)

    @classmethod
    def starting_now(cls, clock: Clock = MONOTONIC,
                     finish_within: float | None = None) -> TimeBudget:
        """A budget whose call starts now, to end within ``finish_within`` seconds."""
        started = clock()
        end_by = None if finish_within is None else started + float(finish_within)
        return cls(clock=clock, started=started, end_by=end_by)

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return self.clock() - self.started

    def limit_fitting(self, max_seconds: float | None) -> None:
        """Fitting may run ``max_seconds`` from now (None: no limit)."""
        self.deadline = None if max_seconds is None else self.clock() + max_seconds

    def reserve(self) -> float:
        """Seconds the export copy, the final validation and saving need (measured: the
        network's build, the last validation mAP; :data:`SAVE_SECONDS`)."""
        return (self.build_seconds + self.predict_seconds
                + self.score_seconds * self.final_scorings + SAVE_SECONDS)

    def out_of_time(self, now: float | None = None) -> bool:
        """Whether fitting must stop at ``now`` (default: the clock's time)."""
        now = self.clock() if now is None else now
        if self.deadline is not None and now > self.deadline:
            return True
        until_next_check = self.step_seconds + self.epoch_end_seconds
        return self.end_by is not None and now + until_next_check + self.reserve() > self.end_by

    def final_validation_fits(self) -> bool:
        """Whether the final validation, as last measured, and saving fit in ``end_by``."""
        return self.end_by is None or self.clock() + self.reserve() <= self.end_by

    def fitting_begins(self) -> None:
        """Until the first epoch ends, its end is estimated by the last validation mAP."""
        self.epoch_end_seconds = max(self.epoch_end_seconds,
                                     self.predict_seconds + self.score_seconds)
        self._checked = self.clock()

    def batch_begins(self) -> None:
        self._batch_started = self.clock()

    def batch_ends(self) -> bool:
        """The check after a batch: True if fitting must stop now."""
        self._checked = now = self.clock()
        self.step_seconds = now - self._batch_started
        return self.out_of_time(now)

    def epoch_ends(self) -> None:
        """The end of an epoch is done: its duration counts for the next checks."""
        self.epoch_end_seconds = max(self.epoch_end_seconds, self.clock() - self._checked)
