"""Masked segmentation losses for noisy, sparse and incomplete labels.

Every loss is a ``torch.nn.Module`` called as ``loss(logits, target, valid=None)``:

- ``logits``: ``(B, 1, H, W)`` for binary losses (sigmoid), ``(B, C, H, W)`` for multi-class ones
  (softmax); ``(B, H, W)`` is accepted for binary losses.
- ``target``: ``(B, H, W)`` integer labels (binary: 0/1; multi-class: 0..C-1). Values outside the
  valid mask are never read, so they may hold an ignore value such as 255.
- ``valid``: ``(B, H, W)`` bool mask of the pixels that count (``None`` = all). Make it from an ignore
  value with :func:`valid_mask`.

Each returns a scalar: the mean per-pixel loss over the N valid pixels (0 with a gradient when N = 0),
except L_DMI, which scores the valid pixels as a whole. Notation below: z the logit, p = sigmoid(z)
the foreground probability, y in {0, 1} the (noisy) label, sums over valid pixels.

Names for :func:`get_loss`: ``bce``, ``weighted-bce``, ``exponential-unlabelled``, ``bootstrap-hard``,
``bootstrap-soft``, ``dmi``, ``ce``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..validate import IGNORE_VALUE  # the default for "not annotated" pixels; importable from here too
from .settings import DMI_EPS  # noqa: F401 (re-exported: the loss and the candidate scores share it)


def valid_mask(target: torch.Tensor, ignore_value: int | None = IGNORE_VALUE) -> torch.Tensor:
    """Bool mask of pixels whose label is not ``ignore_value`` (all True when it is None)."""
    if ignore_value is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_value


def _binary_logits(logits: torch.Tensor) -> torch.Tensor:
    if logits.ndim == 4:
        if logits.shape[1] != 1:
            raise ValueError(f"binary loss needs one output channel, got logits of shape {tuple(logits.shape)}")
        return logits[:, 0]
    if logits.ndim != 3:
        raise ValueError(f"logits must be (B, 1, H, W) or (B, H, W), got {tuple(logits.shape)}")
    return logits


def _prepare(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None):
    z = _binary_logits(logits).float()
    if target.shape != z.shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits {tuple(z.shape)}")
    v = torch.ones_like(z, dtype=torch.bool) if valid is None else valid.to(torch.bool)
    # ignored pixels are replaced so that they cannot leak NaNs or out-of-range values into the graph
    y = torch.where(v, target, torch.zeros_like(target)).float().clamp(0, 1)
    return z, y, v


def _masked_mean(per_pixel: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    w = valid.to(per_pixel.dtype)
    n = w.sum()
    total = (per_pixel * w).sum()
    return total / n.clamp(min=1.0)


class MaskedLoss(nn.Module):
    """Base class: ``forward(logits, target, valid=None) -> scalar``."""

    name = "masked"
    #: True if the loss accepts C > 1 output channels (softmax).
    multiclass = False
    #: True if the loss accepts one output channel (sigmoid).
    binary = True

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                valid: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class BCELoss(MaskedLoss):
    """Plain binary cross-entropy over the valid pixels.

    ``L = -(1/N) sum [ y log p + (1 - y) log(1 - p) ]``, computed from logits for stability.
    """

    name = "bce"

    def forward(self, logits, target, valid=None):
        z, y, v = _prepare(logits, target, valid)
        return _masked_mean(F.binary_cross_entropy_with_logits(z, y, reduction="none"), v)


class WeightedBCELoss(MaskedLoss):
    """Class-weighted logistic loss.

    ``L = -(1/N) sum [ w1 y log p + w0 (1 - y) log(1 - p) ]``.

    With ``pos_weight=None`` (default) the weights balance the classes in each batch:
    ``w1 = N / (2 N1)``, ``w0 = N / (2 N0)`` with N1, N0 the valid foreground and background counts,
    so each class contributes half of the loss. A number fixes ``w1 = pos_weight`` and ``w0 = 1``.
    """

    name = "weighted-bce"

    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits, target, valid=None):
        z, y, v = _prepare(logits, target, valid)
        vf = v.float()
        if self.pos_weight is None:
            n = vf.sum()
            n1 = (y * vf).sum()
            n0 = n - n1
            w1 = n / (2 * n1.clamp(min=1.0))
            w0 = n / (2 * n0.clamp(min=1.0))
        else:
            w1 = torch.as_tensor(float(self.pos_weight), device=z.device)
            w0 = torch.ones((), device=z.device)
        w = (w1 * y + w0 * (1 - y)).detach()
        return _masked_mean(w * F.binary_cross_entropy_with_logits(z, y, reduction="none"), v)


class ExponentialUnlabelledLoss(MaskedLoss):
    """Positive-unlabelled loss: logistic on labelled foreground, a bounded exponential on the rest.

    In the positive-unlabelled (PU) setting a 0 means "not annotated", not "background": some of those
    pixels belong to objects the annotator missed. Plain BCE charges ``-log(1 - p)``, which grows
    without bound, for calling them foreground. This loss keeps the logistic loss on labelled
    foreground and replaces it on unlabelled pixels by an exponential transform of it:

    ``L = (1/N) [ sum_{y=1} -log p  +  w_u sum_{y=0} (1 - exp(-gamma * (-log(1 - p)))) / gamma ]``
    ``  = (1/N) [ sum_{y=1} -log p  +  w_u sum_{y=0} (1 - (1 - p)^gamma) / gamma ]``.

    The unlabelled term is at most ``1/gamma`` per pixel, tends to BCE as ``gamma -> 0`` and equals
    ``p`` at ``gamma = 1`` (default); its gradient ``p (1 - p)^gamma`` fades for pixels the network
    confidently calls foreground, so missed objects stop being pushed to background. ``w_u`` weights
    the unlabelled pixels (default 1). (The second seed paper names this loss without a formula; this
    is our reading of it.)
    """

    name = "exponential-unlabelled"

    def __init__(self, gamma: float = 1.0, unlabelled_weight: float = 1.0) -> None:
        super().__init__()
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)
        self.unlabelled_weight = float(unlabelled_weight)

    def forward(self, logits, target, valid=None):
        z, y, v = _prepare(logits, target, valid)
        positive = F.softplus(-z)  # -log p
        unlabelled = -torch.expm1(-self.gamma * F.softplus(z)) / self.gamma  # (1 - (1-p)^g) / g
        per_pixel = y * positive + (1 - y) * self.unlabelled_weight * unlabelled
        return _masked_mean(per_pixel, v)


def _class_probs(logits: torch.Tensor):
    """(log q, q) with a class axis: 2 channels [bg, fg] from one sigmoid output, else a softmax."""
    if logits.ndim == 3:
        logits = logits[:, None]
    logits = logits.float()
    if logits.shape[1] == 1:
        z = logits[:, 0]
        log_q = torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], dim=1)
    else:
        log_q = F.log_softmax(logits, dim=1)
    return log_q, log_q.exp()


def _one_hot(target: torch.Tensor, valid: torch.Tensor, n_classes: int) -> torch.Tensor:
    t = torch.where(valid, target, torch.zeros_like(target)).long()
    if t.numel() and int(t.max()) >= n_classes:
        raise ValueError(f"target holds class {int(t.max())} but the logits have {n_classes} classes")
    return F.one_hot(t.clamp(min=0), n_classes).permute(0, 3, 1, 2).float()


class SoftBootstrapLoss(MaskedLoss):
    """Soft bootstrapping (Reed et al. 2014, "Training deep neural networks on noisy labels with
    bootstrapping"): the target mixes the noisy label with the network's own prediction.

    ``L = -(1/N) sum_pixels sum_k [ beta t_k + (1 - beta) q_k ] log q_k``

    with ``t`` the one-hot label, ``q`` the predicted class probabilities (``[1 - p, p]`` for one
    sigmoid output) and ``beta = 0.95`` as in the paper. As in the paper, ``q`` in the target is not
    detached, so the second term is a minimum-entropy regulariser.
    """

    name = "bootstrap-soft"
    multiclass = True

    def __init__(self, beta: float = 0.95) -> None:
        super().__init__()
        self.beta = float(beta)

    def _target(self, q: torch.Tensor) -> torch.Tensor:
        return q

    def forward(self, logits, target, valid=None):
        log_q, q = _class_probs(logits)
        v = torch.ones(target.shape, dtype=torch.bool, device=target.device) if valid is None else valid.bool()
        if target.shape != (log_q.shape[0],) + tuple(log_q.shape[2:]):
            raise ValueError(f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
        t = _one_hot(target, v, log_q.shape[1])
        mix = self.beta * t + (1 - self.beta) * self._target(q)
        return _masked_mean(-(mix * log_q).sum(dim=1), v)


class HardBootstrapLoss(SoftBootstrapLoss):
    """Hard bootstrapping (Reed et al. 2014): the target mixes the label with the predicted class.

    ``L = -(1/N) sum_pixels sum_k [ beta t_k + (1 - beta) z_k ] log q_k``

    with ``z_k = 1`` for ``k = argmax q`` and 0 otherwise, and ``beta = 0.8`` as in the paper.
    """

    name = "bootstrap-hard"

    def __init__(self, beta: float = 0.8) -> None:
        super().__init__(beta)

    def _target(self, q: torch.Tensor) -> torch.Tensor:
        return F.one_hot(q.argmax(dim=1), q.shape[1]).permute(0, 3, 1, 2).float()




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


class DMILoss(MaskedLoss):
    """Determinant-based mutual information, L_DMI (Xu et al. 2019), over the valid pixels.

    ``L_DMI = -log(|det(P S^T)| + eps)`` with ``P = [p; 1 - p]`` the predictions and ``S = [y; 1 - y]``
    the labels stacked over the N valid pixels. The formula is :func:`dmi_loss`
    (shared with iGTT); this class only selects the valid pixels. L_DMI is information-monotone, so it
    is robust to label noise whose transition matrix is invertible, but it is blind to the sign of the
    correlation (``p`` and ``1 - p`` score the same); Xu et al. start from a model trained with
    cross-entropy (``SupervisedConfig.warmup_epochs``).
    """

    name = "dmi"

    def forward(self, logits, target, valid=None):
        z, y, v = _prepare(logits, target, valid)
        p = torch.sigmoid(z)[v]
        if p.numel() == 0:
            return logits.sum() * 0.0
        return dmi_loss(p, y[v])


class CrossEntropyLoss(MaskedLoss):
    """Multi-class cross-entropy with ignored pixels: ``L = -(1/N) sum log q_y`` (softmax ``q``).

    With one output channel it falls back to binary cross-entropy.
    """

    name = "ce"
    multiclass = True

    def forward(self, logits, target, valid=None):
        if logits.ndim == 3 or logits.shape[1] == 1:
            return BCELoss()(logits, target, valid)
        v = torch.ones(target.shape, dtype=torch.bool, device=target.device) if valid is None else valid.bool()
        t = torch.where(v, target, torch.zeros_like(target)).long()
        if t.numel() and int(t.max()) >= logits.shape[1]:
            raise ValueError(f"target holds class {int(t.max())} but the logits have {logits.shape[1]} classes")
        per_pixel = F.cross_entropy(logits.float(), t, reduction="none")
        return _masked_mean(per_pixel, v)


LOSSES: dict[str, type[MaskedLoss]] = {
    "bce": BCELoss,
    "weighted-bce": WeightedBCELoss,
    "exponential-unlabelled": ExponentialUnlabelledLoss,
    "bootstrap-hard": HardBootstrapLoss,
    "bootstrap-soft": SoftBootstrapLoss,
    "dmi": DMILoss,
    "ce": CrossEntropyLoss,
}


def get_loss(name: str, **kwargs) -> MaskedLoss:
    """Build a masked loss by its plain name.

    Parameters
    ----------
    name : str
        One of ``bce``, ``weighted-bce``, ``exponential-unlabelled``, ``bootstrap-hard``,
        ``bootstrap-soft``, ``dmi``, ``ce`` (underscores are accepted for hyphens).
    **kwargs
        Loss parameters: ``pos_weight`` (weighted-bce), ``gamma`` and ``unlabelled_weight``
        (exponential-unlabelled), ``beta`` (bootstrapping).

    Raises
    ------
    ValueError
        For an unknown name or parameter.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}")
    try:
        return LOSSES[key](**kwargs)
    except TypeError as err:
        raise ValueError(f"loss {key!r}: {err}") from None
