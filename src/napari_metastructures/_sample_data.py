"""Sample data for napari's File > Open Sample menu (named in napari.yaml).

Every sample is an image plus its ground-truth labels, as LayerData tuples; the
parameters that made it travel in the layers' metadata.
"""
from __future__ import annotations

import numpy as np

from napari_metastructures.core import noise, synthetic
from napari_metastructures.io import NUCLEI_STEMS, load_nuclei_sample

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
