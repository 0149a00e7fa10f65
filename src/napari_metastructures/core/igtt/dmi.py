"""The DMI and soft-IoU losses of iGTT, and closed-form scores of threshold candidates.

Binary DMI
----------
With ``P = [p; 1-p]`` and ``S = [y; 1-y]`` over N pixels (rows x pixels), the 2 x 2 matrix
``P S^T`` has determinant ``N * sum(p y) - sum(p) * sum(y) = N^2 cov(p, y)``. So

    L_DMI = -log(|det(P S^T)| + 0.001) = -log(N^2 |cov(p, y)| + 0.001)

(no 1/N, as in the paper). We never form the determinant in float32: at 256 x 256 its entries
reach about 6.5e4 and the difference of two such products loses every significant digit when p and
y are nearly independent. :func:`dmi_loss` (in :mod:`..training.losses`, shared with supervised
training) uses the covariance form with float64 sums.

Candidates in closed form
-------------------------
For a threshold candidate ``s = [P > t]`` with foreground fraction q and class means mu1 (above t)
and mu0 (at or below t), ``cov(P, s) = q (1 - q) (mu1 - mu0)``. One ``searchsorted`` of the
pixels against the K sorted thresholds and two ``bincount`` calls give q, mu1, mu0 for every
candidate: O(N log K + K) with no determinants. That pass is the production scorer,
:func:`.candidates.candidate_scores`; :func:`dmi_candidate_scores` states its ``"dmi"`` score as L_DMI.

The sign-blindness of DMI (``p`` and ``1 - p`` score the same, because |cov| is symmetric) is
resolved outside this module, from the image (see ``candidates.py``).
"""
from __future__ import annotations

import numpy as np

from ..training.settings import DMI_EPS
from .candidates import candidate_scores, thresholds  # noqa: F401  (thresholds: re-exported)

#: The torch losses live with the others (``training.losses``); imported on first use, so that
#: importing this module (and the widgets) does not import torch.
_LOSSES = ("dmi_loss", "soft_iou_loss")


def __getattr__(name: str):
    if name in _LOSSES:
        from ..training import losses

        return getattr(losses, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dmi_determinant(p: np.ndarray, y: np.ndarray) -> float:
    """Reference: ``det(P S^T)`` built as a 2 x 2 matrix product in float64 (for tests)."""
    p = np.asarray(p, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    P = np.stack([p, 1.0 - p])
    S = np.stack([y, 1.0 - y])
    return float(np.linalg.det(P @ S.T))


def dmi_candidate_scores(prob: np.ndarray, thresh: np.ndarray, eps: float = DMI_EPS) -> np.ndarray:
    """L_DMI of every candidate ``[prob > t]`` against ``prob``, in closed form (lower is better).

    Equals ``-log(|det(P S_k^T)| + eps)`` with ``|det| = N^2 |q (1-q) (mu1 - mu0)|``, where the
    second factor is the ``"dmi"`` score of :func:`.candidates.candidate_scores` (the one pass iGTT uses).
    """
    n = float(np.asarray(prob).size)
    return -np.log(n * n * candidate_scores(prob, None, thresh, "dmi") + eps)


def dmi_candidate_scores_det(prob: np.ndarray, thresh: np.ndarray, eps: float = DMI_EPS) -> np.ndarray:
    """The same scores by K explicit determinants (slow reference, for tests and benchmarks)."""
    x = np.asarray(prob, np.float64).ravel()
    return np.array([-np.log(abs(dmi_determinant(x, (x > t).astype(np.float64))) + eps)
                     for t in np.asarray(thresh)])
