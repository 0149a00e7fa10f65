"""Sample data for napari's File > Open Sample menu (named in napari.yaml).

The synthetic and nuclei samples are an image plus its ground-truth labels, as LayerData
tuples; the parameters that made them travel in the layers' metadata. The yeast
mitochondria time-lapse is real data without ground truth: an image only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from napari_metastructures.core import noise, synthetic
from napari_metastructures.core.validate import InputError
from napari_metastructures.io import NUCLEI_STEMS, load_nuclei_sample
from napari_metastructures.layer_axes import layers_take_axes
from napari_metastructures.tiff_metadata import _ome_sizes

#: Seed of every synthetic sample, so the menu always gives the same images.
SAMPLE_SEED = 0


def _pair(name: str, image: np.ndarray, mask: np.ndarray, meta: dict) -> list[tuple]:
    return [
        (image, {"name": f"{name} (synthetic)", "colormap": "gray", "metadata": meta}, "image"),
        (mask, {"name": f"{name} ground truth", "opacity": 0.5, "metadata": meta}, "labels"),
    ]


def er_network() -> list[tuple]:
    """Synthetic ER network (512x512, medium noise) with its ground-truth mask."""
    params = {"shape": (512, 512), "seed": SAMPLE_SEED, "noise_level": "medium"}
    image, mask = synthetic.er_network(**params)
    meta = {"source": "napari_metastructures.core.synthetic.er_network", "params": params}
    return _pair("ER network", image, mask, meta)


def mitochondria() -> list[tuple]:
    """Synthetic hazy mitochondria (512x512, medium noise, ~10 % foreground) with ground truth."""
    params = {"shape": (512, 512), "seed": SAMPLE_SEED, "noise_level": "medium", "foreground_fraction": 0.10}
    image, mask = synthetic.mitochondria(**params)
    meta = {"source": "napari_metastructures.core.synthetic.mitochondria", "params": params}
    return _pair("Mitochondria", image, mask, meta)


def nuclei() -> list[tuple]:
    """Three real DSB2018 nuclei images (CC0) stacked along the first axis, with masks and instances."""
    images, masks, instances = zip(*(load_nuclei_sample(i) for i in range(len(NUCLEI_STEMS))))
    meta = {"source": "DSB2018 / BBBC038 (CC0), see sample_data/nuclei/SOURCE.md", "stems": list(NUCLEI_STEMS)}
    return [
        (np.stack(images), {"name": "Nuclei (DSB2018)", "colormap": "gray", "metadata": meta}, "image"),
        (np.stack(masks), {"name": "Nuclei ground truth", "opacity": 0.5, "metadata": meta}, "labels"),
        (np.stack(instances), {"name": "Nuclei instances", "visible": False, "metadata": meta}, "labels"),
    ]


def meta_structure_demo() -> list[tuple]:
    """Circle-in-rectangle labels, a randomly flipped copy (RCL) and random labels (RL).

    Flipping 30 % of the pixels keeps the meta-structure (its transition matrix has rank 2);
    random labels with p = 0.5 destroy it (rank 1).
    """
    clean = synthetic.circle_in_rectangle((256, 256))
    rcl_params = {"kind": "flip", "p": 0.3, "seed": SAMPLE_SEED}
    rl_params = {"kind": "random", "p": 0.5, "seed": SAMPLE_SEED}
    rcl = noise.flip_labels(clean, rcl_params["p"], seed=SAMPLE_SEED)
    rl = noise.random_labels(clean, rl_params["p"], seed=SAMPLE_SEED)
    out = [(clean, {"name": "Circle in rectangle (ground truth)",
                    "metadata": {"source": "napari_metastructures.core.synthetic.circle_in_rectangle",
                                 "params": {"shape": (256, 256)}}}, "labels")]
    for label, arr, params in (("RCL: flipped, p=0.3", rcl, rcl_params), ("RL: random, p=0.5", rl, rl_params)):
        rank = noise.matrix_rank(noise.transition_matrix(params["kind"], p=params["p"]))
        meta = {"source": f"napari_metastructures.core.noise ({params['kind']})", "params": params,
                "transition_matrix_rank": int(rank)}
        visible = params["kind"] == "flip"  # RCL on top of the ground truth; RL hidden
        out.append((arr, {"name": f"{label} (rank {rank})", "metadata": meta, "visible": visible}, "labels"))
    return out


#: The bundled yeast mitochondria time-lapse (Nellie sample, CC BY 4.0; see its SOURCE.md).
YEAST_MITO_DIR = Path(__file__).parent / "sample_data" / "yeast_mito_3d"
YEAST_MITO_FILE = YEAST_MITO_DIR / "yeast_mito_t3.ome.tif"
YEAST_MITO_NAME = "Yeast mitochondria, 3D time-lapse (real)"
_YEAST_ATTRIBUTION = (
    "Nellie sample stack yeast_3d_mitochondria.ome.tif (PyPI nellie 1.0.4), first 3 time points; "
    "Lefebvre, Sturm, Lin et al., Nat Methods 2025, doi:10.1038/s41592-025-02612-7; "
    "Nellie (c) 2024 Austin E. Y. T. Lefebvre"
)


def load_yeast_mito_sample(path: str | Path = YEAST_MITO_FILE) -> tuple[np.ndarray, dict[str, float]]:
    """The bundled yeast time-lapse: (TZYX uint16 data, OME pixel sizes {"T": s, "Z"/"Y"/"X": µm}).

    Raises
    ------
    InputError
        If the file is not TZYX or its OME metadata lack PhysicalSizeX/Y/Z or TimeIncrement.
    """
    path = Path(path)
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes, data, xml = series.axes, series.asarray(), tif.ome_metadata
    sizes = _ome_sizes(xml) if xml else {}
    if axes != "TZYX":
        raise InputError(f"{path.name}: expected axes TZYX, got '{axes}' with shape {data.shape}.")
    missing = [a for a in "TZYX" if not (sizes.get(a, 0) > 0)]
    if missing:
        names = ", ".join("TimeIncrement" if a == "T" else f"PhysicalSize{a}" for a in missing)
        raise InputError(f"{path.name}: the OME metadata lack {names}; cannot place the sample in µm / s.")
    return data, {a: sizes[a] for a in "TZYX"}


def yeast_mitochondria() -> list[tuple]:
    """Real 3D time-lapse of yeast mitochondria (TZYX 3x17x192x279, uint16), no ground truth.

    Scale comes from the file's OME metadata: time step in s, voxel size in µm.
    """
    data, sizes = load_yeast_mito_sample()
    scale = tuple(sizes[a] for a in "TZYX")
    lo, hi = (float(v) for v in np.percentile(data, (1, 99.9)))
    meta = {
        "source": "Nellie sample data (yeast_3d_mitochondria.ome.tif), see sample_data/yeast_mito_3d/SOURCE.md",
        "attribution": _YEAST_ATTRIBUTION,
        "licence": "CC BY 4.0",
        "file": YEAST_MITO_FILE.name,
        "time_points": "0-2 of the original stack (first 3), pixel values unchanged",
        "axes": "TZYX",
        "pixel_size_um": {"z": sizes["Z"], "y": sizes["Y"], "x": sizes["X"]},
        "time_increment_s": sizes["T"],
        "ground_truth": "no ground truth: judge results by eye",
    }
    kwargs: dict = {"name": YEAST_MITO_NAME, "colormap": "gray", "scale": scale,
                    "contrast_limits": (lo, hi), "metadata": meta}
    if layers_take_axes():
        kwargs["axis_labels"], kwargs["units"] = ("t", "z", "y", "x"), ("s", "µm", "µm", "µm")
    return [(data, kwargs, "image")]
