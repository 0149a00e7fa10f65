"""Instance-level noise: misannotation, misclassification and inexhaustive annotation.

Instances are connected components of the labels, or the ids of a given instance map.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..validate import IGNORE_VALUE, InputError, check_labels
from .common import _axes, _check_p, _n_classes, _out_dtype, _present_classes, _replace, _rng, checked


def label_instances(labels: np.ndarray, spatial_ndim: int | None = None, return_classes: bool = False):
    """Connected components of each non-zero value (full connectivity), numbered 1..N.

    With ``spatial_ndim`` only the last axes connect, so frames of a stack stay apart.
    ``return_classes`` also returns the class of each id (index 0 = background).
    """
    labels = np.asarray(labels)
    axes = _axes(labels.ndim, spatial_ndim)
    structure = np.zeros((3,) * labels.ndim, dtype=bool)
    structure[tuple(slice(None) if ax in axes else 1 for ax in range(labels.ndim))] = True
    inst, classes = np.zeros(labels.shape, dtype=np.int32), [0]
    for c in _present_classes(labels, None):
        if c:
            comp, n = ndi.label(labels == c, structure=structure)
            if len(classes) == 1:
                inst = comp
            else:
                np.add(inst, comp + (len(classes) - 1), out=inst, where=comp > 0)
            classes += [c] * n
    classes = np.array(classes, dtype=np.int64)
    return (inst, classes) if return_classes else inst


def _instance_table(labels, instances, spatial_ndim):
    """(instance ids, class of each id, which ids occur, whether ids come from the labels)."""
    if instances is None:
        inst, cls = label_instances(labels, spatial_ndim, return_classes=True)
        present = np.arange(cls.size) > 0
        return inst, cls, present, True
    inst = check_labels(instances, name="instances", min_ndim=1)
    if inst.shape != labels.shape:
        raise InputError(f"instances: shape {inst.shape} differs from the labels' {labels.shape}.")
    inst = inst.astype(np.intp, copy=False)
    cls = np.zeros(int(inst.max()) + 1, dtype=np.int64)
    cls[inst.reshape(-1)] = labels.reshape(-1)  # an instance's class, read at one of its pixels
    present = np.bincount(inst.reshape(-1), minlength=cls.size) > 0
    present[0] = False
    return inst, cls, present, False


def _apply_instances(labels, table, changed, new_class):
    inst, cls, _, from_labels = table
    dtype = _out_dtype(labels, int(new_class.max(initial=0)))
    if from_labels:  # components cover every labelled pixel: one lookup
        return np.where(changed, new_class, cls).astype(dtype)[inst]
    return _replace(labels, changed[inst], new_class[inst], dtype)


@checked
def drop_instances(
    labels: np.ndarray, p: float, seed=None, instances: np.ndarray | None = None,
    exact: bool = False, spatial_ndim: int | None = None,
) -> np.ndarray:
    """Inexhaustive annotation: set each instance to background with probability ``p``.

    Instances are connected components of ``labels``, or the ids of ``instances`` when given.
    ``exact`` drops exactly ``round(p * N)`` of the N instances.
    """
    p, rng, labels = _check_p(p), _rng(seed), np.asarray(labels)
    table = _instance_table(labels, instances, spatial_ndim)
    cls, present = table[1], table[2]
    ids = np.flatnonzero(present & (cls > 0))
    drop = np.zeros(cls.size, dtype=bool)
    if exact:
        drop[rng.choice(ids, int(round(p * ids.size)), replace=False)] = True
    else:
        drop[ids] = rng.random(ids.size) < p
    return _apply_instances(labels, table, drop, np.zeros_like(cls))


@checked
def misannotate_instances(
    labels: np.ndarray, p: float = 1.0, seed=None, target: int = 1,
    instances: np.ndarray | None = None, spatial_ndim: int | None = None,
) -> np.ndarray:
    """Instance misannotation: each non-target instance becomes class ``target`` with probability ``p``.

    Non-target instances are those of other classes, and, when ``instances`` is given,
    instances lying on background (objects that were not meant to be labelled).
    """
    p, rng, labels = _check_p(p), _rng(seed), np.asarray(labels)
    table = _instance_table(labels, instances, spatial_ndim)
    cls, present = table[1], table[2]
    ids = np.flatnonzero(present & (cls != target))
    change = np.zeros(cls.size, dtype=bool)
    change[ids] = rng.random(ids.size) < p
    return _apply_instances(labels, table, change, np.full_like(cls, int(target)))


@checked
def misclassify_instances(
    labels: np.ndarray, p: float = 1.0, seed=None, n_classes: int | None = None,
    instances: np.ndarray | None = None, spatial_ndim: int | None = None, ignore_value: int = IGNORE_VALUE,
) -> np.ndarray:
    """Instance misclassification: with probability ``p`` an instance gets a class drawn
    uniformly from 1..M-1 (possibly its own). Binary labels need ``n_classes >= 3`` to change."""
    p, rng, labels = _check_p(p), _rng(seed), np.asarray(labels)
    m = _n_classes(labels, ignore_value, n_classes)
    table = _instance_table(labels, instances, spatial_ndim)
    cls, present = table[1], table[2]
    change = present & (cls > 0) & (cls != ignore_value) & (rng.random(cls.size) < p)
    return _apply_instances(labels, table, change, rng.integers(1, m, size=cls.size))
