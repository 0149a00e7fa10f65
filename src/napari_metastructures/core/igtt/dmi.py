"""The DMI and soft-IoU losses of iGTT, and closed-form scores of threshold candidates.

Binary DMI
----------
With ``P = [p; 1-p]`` and ``S = [y; 1-y]`` over N pixels (rows x pixels), the 2 x 2 matrix
``P S^T`` has determinant ``N * sum(p y) - sum(p) * sum(y) = N^2 cov(p, y)``. So

    L_DMI = -log(|det(P S^T)| + 0.001) = -log(N^2 |cov(p, y)| + 0.001)

(no 1/N, as in the paper). We never form the determinant in float32: at 256 x 256 its entries
reach about 6.5e4 and the difference of two such products loses every significant digit when p and
y are nearly independent. :func:`dmi_loss` uses the covariance form with float64 sums.

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

DMI_EPS = 1e-3


def dmi_loss(p, y, eps: float = DMI_EPS, signed: bool = False):
    """Binary L_DMI = -log(|N sum(p y) - sum(p) sum(y)| + eps), summed over the whole batch.

    Parameters
    ----------
    p : torch.Tensor
        Foreground probabilities, any shape.
    y : torch.Tensor
        Targets in [0, 1] (pseudo-labels), same shape.
    eps : float
        0.001 as in the paper.
    signed : bool
        Use ``max(det, 0)`` instead of ``|det|``: only positive covariance is rewarded. With the
        pseudo-labels' polarity fixed from the image, this stops the network from learning the
        inverted map (which |det| rewards equally); while det <= 0 only the IoU term drives.

    Returns
    -------
    torch.Tensor
        Scalar, float32 (computed in float64, differentiable in p).
    """
    import torch

    p64 = p.reshape(-1).double()
    y64 = y.reshape(-1).double()
    n = p64.numel()
    det = n * (p64 * y64).sum() - p64.sum() * y64.sum()
    det = det.clamp(min=0.0) if signed else det.abs()
    return (-torch.log(det + eps)).float()


def soft_iou_loss(p, y, weight=None, eps: float = 1e-6, squared_union: bool = False):
    """Soft IoU loss ``1 - sum(w p y) / (sum(w (p + y - p y)) + eps)`` over the whole batch.

    ``squared_union=True`` uses ``p**2`` in the union as the official code does.
    ``weight`` (same shape, optional) weights pixels, e.g. to ignore some.
    """
    pu = p * p if squared_union else p
    inter = p * y
    union = pu + y - inter
    if weight is not None:
        inter, union = inter * weight, union * weight
    return 1.0 - inter.sum() / (union.sum() + eps)


def dmi_determinant(p: np.ndarray, y: np.ndarray) -> float:
    """Reference: ``det(P S^T)`` built as a 2 x 2 matrix product in float64 (for tests)."""
    p = np.asarray(p, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    P = np.stack([p, 1.0 - p])
    S = np.stack([y, 1.0 - y])
    return float(np.linalg.det(P @ S.T))


def thresholds(prob: np.ndarray, k: int = 30) -> np.ndarray:
    """K thresholds evenly spaced from min to max of ``prob`` (float64)."""
    prob = np.asarray(prob)
    return np.linspace(float(prob.min()), float(prob.max()), int(k))


def dmi_candidate_scores(prob: np.ndarray, thresh: np.ndarray, eps: float = DMI_EPS) -> np.ndarray:
    """L_DMI of every candidate ``[prob > t]`` against ``prob``, in closed form (lower is better).

    Equals ``-log(|det(P S_k^T)| + eps)`` with ``|det| = N^2 |q (1-q) (mu1 - mu0)|``, where the
    second factor is the ``"dmi"`` score of :func:`.candidates.candidate_scores` (the one pass iGTT uses).
    """
    from .candidates import candidate_scores  # not at the top: candidates imports this module

    n = float(np.asarray(prob).size)
    return -np.log(n * n * candidate_scores(prob, None, thresh, "dmi") + eps)


def dmi_candidate_scores_det(prob: np.ndarray, thresh: np.ndarray, eps: float = DMI_EPS) -> np.ndarray:
    """The same scores by K explicit determinants (slow reference, for tests and benchmarks)."""
    x = np.asarray(prob, np.float64).ravel()
    return np.array([-np.log(abs(dmi_determinant(x, (x > t).astype(np.float64))) + eps)
                     for t in np.asarray(thresh)])
