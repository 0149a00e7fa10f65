"""Noisy-label families of the meta-structure papers: the public entry point.

Labels are nD integer arrays: 0 = background, 1..M-1 = classes. Pixels equal to
``ignore_value`` (default 255) are "not labelled": they are never a class. Every random
step takes an int seed or a ``numpy.random.Generator``.

Modules: :mod:`.pixel` (sampling, flipping, random labels), :mod:`.morphology` (dilation,
erosion, skeletons), :mod:`.instance` (misannotation, misclassification, dropped instances),
:mod:`.transition` (transition matrices) and :mod:`.common` (shared helpers). This package
re-exports their public functions and adds the dispatcher :func:`make_noisy`.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..validate import InputError, check_labels
from .common import MAX_AUTO_CLASSES
from .instance import drop_instances, label_instances, misannotate_instances, misclassify_instances
from .morphology import dilate_labels, erode_labels, morph_labels, skeleton_labels
from .pixel import (
    _pick,  # noqa: F401 (the tests reach it as noise._pick)
    flip_labels,
    random_labels,
    sample_labels,
    sample_labels_to_background,
)
from .transition import empirical_transition_matrix, matrix_rank, noise_summary, transition_matrix

__all__ = [
    "KINDS", "MAX_AUTO_CLASSES", "sample_labels", "sample_labels_to_background", "flip_labels",
    "random_labels", "dilate_labels", "erode_labels", "morph_labels", "skeleton_labels",
    "label_instances", "drop_instances", "misannotate_instances", "misclassify_instances",
    "transition_matrix", "empirical_transition_matrix", "matrix_rank", "noise_summary",
    "kind_parameters", "make_noisy",
]

#: Noise kinds understood by :func:`make_noisy` (the CLI's ``--kind``).
KINDS = (
    "sample", "sample-to-background", "flip", "dilate", "erode", "morph", "skeleton",
    "random", "misannotate", "misclassify", "drop-instances",
)

_FUNCS = {
    "sample": sample_labels, "sample-to-background": sample_labels_to_background, "flip": flip_labels,
    "dilate": dilate_labels, "erode": erode_labels, "morph": morph_labels, "skeleton": skeleton_labels,
    "random": random_labels, "misannotate": misannotate_instances,
    "misclassify": misclassify_instances, "drop-instances": drop_instances,
}


def kind_parameters(kind: str) -> list[str]:
    """Names of the parameters a kind takes (besides the labels)."""
    if kind not in _FUNCS:
        raise InputError(f"unknown noise kind {kind!r}; choose one of {', '.join(KINDS)}.")
    return list(inspect.signature(_FUNCS[kind]).parameters)[1:]


def make_noisy(labels: np.ndarray, kind: str, seed=None, **params) -> tuple[np.ndarray, dict]:
    """Apply noise ``kind`` (one of :data:`KINDS`) to ``labels``.

    Parameters whose value is None take the function's default. A missing seed is drawn
    fresh and recorded, so every result can be reproduced.

    Returns
    -------
    noisy : ndarray, same shape as ``labels``
    params : dict
        ``kind``, ``seed`` and every effective parameter (arrays are recorded as "given").
    """
    names = kind_parameters(kind)
    labels = check_labels(labels)
    params = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise InputError(f"{kind} does not take {', '.join(unknown)}; it takes {', '.join(names)}.")
    if "seed" in names:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**32)
        params["seed"] = seed
    try:
        bound = inspect.signature(_FUNCS[kind]).bind(labels, **params)
    except TypeError as err:  # e.g. a missing p
        raise InputError(f"{kind}: {err}") from None
    bound.apply_defaults()
    noisy = _FUNCS[kind](*bound.args, **bound.kwargs)
    record = {"kind": kind}
    for k, v in list(bound.arguments.items())[1:]:
        if isinstance(v, np.random.Generator):
            v = "generator"
        elif isinstance(v, np.ndarray):
            v = "given"
        record[k] = v.item() if isinstance(v, np.generic) else v
    return noisy, record
