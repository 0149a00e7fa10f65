"""The label-type study of the meta-structures paper: train on noisy labels, test on clean masks.

For each label type (clean, or a noise family of :mod:`..noise` with its parameters) the study makes
noisy training labels, trains a fresh supervised network with the same schedule and seed
(:func:`..training.supervised.train_supervised`, BCE and SGD by default), and records the test Dice
against the *clean* test masks after every epoch and the training loss of every step.

:func:`run_study` (in :mod:`.runner`) is a generator of progress lines that returns a
:class:`StudyResult`; :func:`write_study` (in :mod:`.report`) writes ``results.csv``,
``summary.csv``, the figures and ``report.md``.
"""
from __future__ import annotations

from .report import (
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    TIERS,
    figure_dice,
    figure_examples,
    figure_loss,
    paper_check,
    summary_table,
    write_study,
)
from .runner import (
    CLEAN_NAMES,
    DEFAULT_LABELS,
    GROUPS,
    MAIN_PARAMETER,
    LabelSpec,
    StudyConfig,
    StudyResult,
    noisy_training_labels,
    parse_label_spec,
    parse_label_specs,
    run_study,
    split_indices,
)

__all__ = [
    "CLEAN_NAMES", "DEFAULT_LABELS", "GROUPS", "MAIN_PARAMETER", "RESULT_COLUMNS", "SUMMARY_COLUMNS", "TIERS",
    "LabelSpec", "StudyConfig", "StudyResult", "figure_dice", "figure_examples", "figure_loss",
    "noisy_training_labels", "paper_check", "parse_label_spec", "parse_label_specs", "run_study",
    "split_indices", "summary_table", "write_study",
]
