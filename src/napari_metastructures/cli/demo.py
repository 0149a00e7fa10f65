"""``metastructures demo``: the headless pipeline on bundled sample data, with a PNG overview.

It makes the paper's noisy-label families from a synthetic ER ground truth, their density maps and
similarity scores, runs iGTT and the threshold baselines on the image, and writes everything with a
``summary.json`` and an ``overview.png`` to the output folder.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..core import jsonsafe
from ..core.validate import InputError, check_memory
from ._files import check_writable, output_path, seed

DEMO_NOISE = [("flip", {"p": 0.45}), ("sample", {"p": 0.1}), ("dilate", {"iterations": 2}),
              ("skeleton", {}), ("random", {"p": 0.1})]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="headless demo on bundled sample data; writes results and overview.png")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--size", type=int, default=512, help="side of the synthetic ER image (default 512)")
    p.add_argument("--bandwidth", type=int, default=8, help="density-map bandwidth h (default 8)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a tiny model and 2 epochs (a smoke run)")
    p.set_defaults(func=run)


def _igtt_config(quick: bool):
    from ..core.igtt.engine import IgttConfig

    if quick:
        return IgttConfig.preset("fast", epochs=2, max_steps=2, crop=64, batch_size=2, tile=128)
    return IgttConfig.preset("fast")


def run(args: argparse.Namespace) -> int:
    from ..core import baselines, density, metrics, noise, synthetic
    from ..core.atomic import atomic_write_text
    from ..core.device import resolve_device
    from ..core.igtt import engine
    from ..io import write_tiff

    out = Path(args.out)
    size = 96 if args.quick else args.size
    if size < 64:
        raise InputError(f"--size {size}: the demo needs at least 64 px.")
    check_memory(4.0 * 40 * size * size, f"the demo at --size {size}")  # image, truth, noisy labels, maps
    resolve_device(args.device)  # a bad device is refused before anything is written
    check_writable(out)
    image, truth = synthetic.er_network((size, size), seed=args.seed)
    write_tiff(out / "er_image.tif", image, params={"source": "core.synthetic.er_network", "seed": args.seed})
    write_tiff(out / "er_truth.tif", truth, layer_type="labels")
    summary: dict = {"seed": args.seed, "image": f"synthetic ER {size}x{size}", "noise": {}, "segmentation": {}}

    print(f"noisy labels and meta-structure similarity (bandwidth {args.bandwidth}):")
    maps = {"clean": density.density_map(truth, args.bandwidth)[1]}
    for kind, params in DEMO_NOISE:
        noisy, used = noise.make_noisy(truth, kind, seed=args.seed, **params)
        q = noise.empirical_transition_matrix(truth, noisy, n_classes=2)
        sim = density.meta_structure_similarity(truth, noisy, args.bandwidth)
        maps[kind] = density.density_map(noisy, args.bandwidth)[1]
        write_tiff(out / f"noise_{kind}.tif", noisy, params=used, layer_type="labels")
        summary["noise"][kind] = {"params": used, "Q": q.round(4).tolist(), "rank": noise.matrix_rank(q),
                                  "similarity": round(float(sim), 4)}
        print(f"  {kind:<10} rank {noise.matrix_rank(q)}  similarity {sim:.3f}")
    write_tiff(out / "density_clean.tif", maps["clean"], params={"bandwidth": args.bandwidth, "class": 1})

    print("segmentation without ground truth (honest protocol, pooled Dice):")
    masks = {}
    for name, fn in [("otsu", baselines.otsu_threshold), ("local", baselines.local_threshold),
                     ("sato+otsu", baselines.sato_otsu)]:
        t0 = time.perf_counter()
        masks[name] = fn(image)
        summary["segmentation"][name] = {"seconds": round(time.perf_counter() - t0, 3)}
    config = _igtt_config(args.quick)
    t0 = time.perf_counter()
    result = engine.run([image], config, seed=args.seed, device=args.device,
                       on_epoch=lambda r: print(f"  iGTT epoch {r.epoch}/{r.n_epochs} loss {r.loss:.4f} "
                                                f"fg {r.foreground_fraction:.3f} ({r.seconds:.1f} s)"))
    prob = result.outputs[0]
    masks["igtt"] = result.masks[0]
    summary["segmentation"]["igtt"] = {"seconds": round(time.perf_counter() - t0, 3),
                                       "config": config.to_dict(), "device": result.model.config.get("device")}
    write_tiff(output_path(out, "er_image", "prob"), prob.astype(np.float32),
               params=summary["segmentation"]["igtt"])
    write_tiff(output_path(out, "er_image", "mask"), masks["igtt"], params=summary["segmentation"]["igtt"],
               layer_type="labels")
    for name, mask in masks.items():
        scores = metrics.pooled_scores([mask], [truth])
        summary["segmentation"][name].update({k: round(float(scores[k]), 4) for k in ("dice", "iou", "accuracy")})
        print(f"  {name:<10} Dice {scores['dice']:.3f}  IoU {scores['iou']:.3f}")

    _overview(out / "overview.png", image, truth, maps, masks, summary, args.bandwidth)
    atomic_write_text(out / "summary.json", jsonsafe.dumps(summary, indent=2))
    print(f"wrote {out}/summary.json and {out}/overview.png")
    return 0


def _stretch(density_map, h: int) -> tuple:
    """Display range of a density map: its 1st-99th percentiles away from the zero-padded border.

    Strong label noise (flip 0.45) keeps the structure at a tenth of the contrast; a per-map range
    shows it, where the map's full range (border fall-off included) looks flat.
    """
    inner = density_map[h:-h, h:-h] if h and min(density_map.shape) > 2 * h else density_map
    lo, hi = np.percentile(inner, (1, 99))
    return float(lo), float(max(hi, lo + 1e-6))


def _overview(path: Path, image, truth, maps, masks, summary, bandwidth: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.atomic import atomic_write

    panels = [("image", image, "gray", None), ("ground truth", truth, "gray", None)]
    panels += [(f"density: {k}" + (f" (sim {summary['noise'][k]['similarity']:.2f})" if k in summary["noise"] else ""),
                m, "magma", _stretch(m, bandwidth)) for k, m in maps.items()]
    panels += [(f"{k}: Dice {summary['segmentation'][k]['dice']:.2f}", m, "gray", None) for k, m in masks.items()]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, data, cmap, limits) in zip(axes.ravel(), panels):
        vmin, vmax = limits or (None, None)
        ax.imshow(data, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)
