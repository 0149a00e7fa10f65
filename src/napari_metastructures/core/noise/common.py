"""Helpers shared by the noise families: seeds, rate checks, class counting, fast replace."""
from __future__ import annotations

import numpy as np

from ..validate import MAX_CLASSES, InputError

#: Without an explicit ``n_classes``, more distinct values than this are refused as classes.
MAX_AUTO_CLASSES = MAX_CLASSES


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_p(p: float, name: str = "p") -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{name} must lie in [0, 1], got {p}.")
    return p


def _replace(labels: np.ndarray, mask: np.ndarray, values, dtype=None) -> np.ndarray:
    """``where(mask, values, labels)`` as ``labels + mask * (values - labels)``: much faster
    than boolean indexing for small integer dtypes (modular wrap-around is exact)."""
    dtype = dtype or labels.dtype
    lab = labels.astype(dtype, copy=False)
    out = np.subtract(values, lab, dtype=dtype, casting="unsafe")
    np.multiply(out, mask, out=out, casting="unsafe")
    np.add(out, lab, out=out)
    return out


def _out_dtype(labels: np.ndarray, value: int) -> np.dtype:
    """The smallest integer dtype that holds ``labels`` and ``value`` (numpy would pick float64 for
    signed labels and a value past int64's half of uint64, e.g. int16 and 2**40 works, int64 and
    2**63 does not)."""
    value = int(value)
    dtype = np.result_type(labels.dtype, np.min_scalar_type(value))
    if np.issubdtype(dtype, np.integer):
        return dtype
    if value <= np.iinfo(np.int64).max:
        return np.dtype(np.int64)
    if labels.size == 0 or int(labels.min()) >= 0:
        return np.dtype(np.uint64)
    from ..validate import InputError

    raise InputError(f"value {value} does not fit one integer type with negative labels.")


def _top(labels: np.ndarray, ignore_value: int | None) -> int:
    """Largest value other than ``ignore_value``."""
    top = int(labels.max()) if labels.size else 0
    if ignore_value is not None and top == ignore_value:
        top = int(np.max(labels, where=labels != ignore_value, initial=0))
    return top


def _n_classes(labels: np.ndarray, ignore_value: int | None, n_classes: int | None) -> int:
    """Number of classes (at least 2); values other than 0..M-1 must equal ``ignore_value``."""
    top = _top(labels, ignore_value)
    if n_classes is None and top >= MAX_AUTO_CLASSES:
        raise InputError(
            f"labels hold values up to {top}, more than {MAX_AUTO_CLASSES} classes: is this an intensity "
            "image or an instance map? Class noise expects 0..M-1; give n_classes to go on anyway."
        )
    m = max(2, top + 1) if n_classes is None else int(n_classes)
    if m < 2:
        raise InputError(f"n_classes must be at least 2, got {m}.")
    if top >= m:
        raise InputError(f"labels hold value {top} but n_classes is {m}; raise n_classes.")
    return m


def _present_classes(labels: np.ndarray, ignore_value: int | None) -> list[int]:
    top = int(labels.max()) if labels.size else 0
    if top < 64:  # a few cheap passes beat sorting or bincount's int64 copy
        found = [c for c in range(top + 1) if (labels == c).any()]
    else:
        found = np.unique(labels).tolist()
    return [int(c) for c in found if c != ignore_value]


def _axes(ndim: int, spatial_ndim: int | None) -> tuple[int, ...]:
    k = ndim if spatial_ndim is None else max(1, min(int(spatial_ndim), ndim))
    return tuple(range(ndim - k, ndim))


def checked(func):
    """Check a family's ``labels`` (and ``instances``) at the door: integers, not negative.

    Float or negative labels raise :class:`InputError` (bool becomes uint8), whoever calls the
    family: the widget, the CLI or a notebook. The signature stays the family's own.
    """
    import functools
    import inspect

    from ..validate import check_labels

    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        bound = signature.bind_partial(*args, **kwargs)
        for name in ("labels", "instances"):
            if bound.arguments.get(name) is not None:
                bound.arguments[name] = check_labels(bound.arguments[name], name=name, min_ndim=1)
        return func(*bound.args, **bound.kwargs)

    return wrapper

