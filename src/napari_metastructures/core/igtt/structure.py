"""What is segmented: thin networks or thick objects, chosen from the data when asked for ``auto``.

EMS keeps a jittered band of the candidate's skeleton, ``2 r + 1`` px wide (r = 1). When that band
covers most of the candidate (ER tubules), the paper's EMS samples the whole object and keeps its
meta-structure (*network*). When most of the candidate lies outside the band (mitochondria, nuclei,
sheets of puncta), EMS would teach only a centre line, so the interior is sampled too, at the same
rate (*objects*, :func:`.ems.interior_count`).

The rule (``structure="auto"``): the first epoch trains with the paper's EMS; its prediction's
threshold candidate, pooled over every image, gives *uncovered*, the share of the foreground that the
band leaves out, ``sum max(0, area - (2r+1) n_skel) / sum area``. Above :data:`OBJECTS_ABOVE` the rest of
the run uses *objects*, else *network*. The first candidate (from the image alone) is not used: blur and
saturated sheets make it too thick on whole cells. The rule is stated in pixels because EMS works in
pixels: it asks whether EMS's own band covers the object at this sampling.

Volumes (``scope="volume"``): the share is measured on the 3D candidate, around its 3D skeleton, as
the voxels outside the band the shifted skeleton can reach (:func:`.ems.outside_band`), with a z
radius of ``max(1, rz)`` planes (rz from :func:`.ems.z_radius`). At least one plane: the axial PSF
spreads every structure over several planes (synthetic ER candidates are 6-7 planes thick), so a band
one plane thick calls every tubule a thick object. On the first candidates of the synthetic stacks
(seeds 0-4, docs/igtt.md) this band gives ER 0.43-0.49 and mitochondria 0.70-0.80 (the yeast stack
0.74), while per plane the two overlap (ER 0.54-0.68, mitochondria 0.58-0.68): oblique sections of a
tubule are wide in a plane but not around the 3D skeleton.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .ems import outside_band, skeleton, z_radius

#: What a user picks: "auto" (decided from the data), or one of the two EMS variants.
STRUCTURES = ("auto", "network", "objects")
#: EMS region setting of each resolved structure (see :func:`.ems.ems`).
EMS_REGION = {"network": 0.0, "objects": "auto"}
#: Share of the epoch-1 candidate outside the skeleton band above which "auto" picks "objects".
#: Measured (docs/igtt.md): whole-cell ER 0.50-0.54, mitochondria 0.61-0.64, DSB2018 nuclei 0.77. It
#: leans towards "network" on purpose: a wrong "objects" costs ER about 0.1 Dice, while with local
#: contrast a wrong "network" costs mitochondria little.
OBJECTS_ABOVE = 0.6



@dataclass(frozen=True)
class StructureChoice:
    """The structure a run uses, and why."""

    structure: str  # "network" or "objects"
    requested: str  # "auto", "network" or "objects"
    uncovered: float  # share of the candidate outside the EMS band (NaN when not measured)
    reason: str

    def as_dict(self) -> dict:
        out = asdict(self)
        out["uncovered"] = None if not np.isfinite(self.uncovered) else round(float(self.uncovered), 4)
        return out


def band_radii(radius: int = 1, anisotropy: float | None = None) -> tuple:
    """(z, y, x) radii of the skeleton band that the choice measures on a volume (module docstring)."""
    r = int(radius)
    return max(1, z_radius(r, anisotropy)), r, r


def uncovered_share(masks: list, radius: int = 1, anisotropy: float | None = None) -> float:
    """Pooled share of the masks' foreground outside a ``2 radius + 1`` px band around their skeleton.

    2D masks: ``area - (2 radius + 1) n_skeleton`` per mask. 3D (Z, Y, X) masks: the voxels outside
    the band of :func:`band_radii` around the 3D skeleton (``anisotropy``: z step / pixel size).
    """
    band = 2 * int(radius) + 1
    area = outside = 0
    for m in masks:
        m = np.asarray(m).astype(bool)
        a = int(np.count_nonzero(m))
        if a == 0:
            continue
        area += a
        if m.ndim == 3:
            outside += outside_band(m, skeleton(m), band_radii(radius, anisotropy))
            continue
        n = int(np.count_nonzero(skeleton(m)))
        outside += max(0, a - band * n)
    return outside / area if area else float("nan")


def mean_width(masks: list) -> float:
    """Pooled mean width of the masks' objects in px: foreground area / skeleton length."""
    area = sum(int(np.count_nonzero(m)) for m in masks)
    length = sum(int(np.count_nonzero(skeleton(np.asarray(m).astype(bool)))) for m in masks)
    return area / length if length else float("nan")


def choose_structure(requested: str, masks: list | None = None, radius: int = 1,
                     anisotropy: float | None = None) -> StructureChoice:
    """Resolve ``requested`` ("auto", "network" or "objects") for candidate ``masks`` (2D images or
    3D volumes, see :func:`uncovered_share`)."""
    if requested not in STRUCTURES:
        raise ValueError(f"structure must be one of {', '.join(STRUCTURES)}, got {requested!r}")
    share = uncovered_share(masks, radius, anisotropy) if masks is not None else float("nan")
    band = "3D skeleton band" if masks is not None and any(np.ndim(m) == 3 for m in masks) else "skeleton band"
    if requested != "auto":
        return StructureChoice(requested, requested, share, "set by the user")
    if not np.isfinite(share):
        return StructureChoice("network", requested, share, "no foreground in the first candidate: thin network")
    pct = round(100 * share)
    if share > OBJECTS_ABOVE:
        return StructureChoice("objects", requested, share,
                               f"{pct}% of the candidate lies off its {band} (> {100 * OBJECTS_ABOVE:.0f}%): "
                               "thick objects")
    return StructureChoice("network", requested, share,
                           f"{pct}% of the candidate lies off its {band} (<= {100 * OBJECTS_ABOVE:.0f}%): "
                           "thin network")
