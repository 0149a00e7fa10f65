"""Meta-structure similarity of the paper's noisy-label families; writes docs/meta-structure.md.

Usage::

    python benchmarks/density_ranking.py            # ER seeds 0-5 and 20 nuclei masks
    python benchmarks/density_ranking.py --quick    # fewer images, for a smoke run

For every reference mask it draws each family (seeded), scores it against the reference with
``meta_structure_similarity`` (noise-corrected and plain Pearson), pools the statistics over
the images, and renders the Figure-6 PNG.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from napari_metastructures.core import noise, synthetic
from napari_metastructures.core.density import density_map, meta_structure_similarity

ROOT = Path(__file__).resolve().parents[1]
NUCLEI = ROOT.parent / "shared" / "data" / "nuclei-dsb2018" / "masks"
if not NUCLEI.exists():
    NUCLEI = Path("/work/shared/data/nuclei-dsb2018/masks")

FAMILIES = {
    "clean": lambda gt, s: gt,
    "flip(0.45)": lambda gt, s: noise.flip_labels(gt, 0.45, seed=s),
    "sample(0.1)": lambda gt, s: noise.sample_labels(gt, 0.1, seed=s),
    "dilate(1)": lambda gt, s: noise.dilate_labels(gt, 1),
    "erode(1)": lambda gt, s: noise.erode_labels(gt, 1),
    "skeleton": lambda gt, s: noise.skeleton_labels(gt),
    "random(0.1)": lambda gt, s: noise.random_labels(gt, 0.1, seed=s),
}
PAPER_ORDER = "clean ~ flip(0.45) ~ sample(0.1) > dilate or erode > skeleton > random"


def load_references(quick: bool) -> dict[str, list[np.ndarray]]:
    import tifffile

    n_er, n_nuc = (2, 5) if quick else (6, 20)
    er = [synthetic.er_network((512, 512), seed=s)[1] for s in range(n_er)]
    files = sorted(NUCLEI.glob("*.tif"))[:n_nuc]
    nuclei = [(tifffile.imread(f) > 0).astype(np.uint8) for f in files]
    return {"ER networks (synthetic, 512x512)": er, f"nuclei (DSB2018 masks, {len(nuclei)} images)": nuclei}


def score_table(refs: list[np.ndarray], h: int) -> list[tuple]:
    """(family, pooled corrected, per-image mean, sd, pooled plain Pearson) rows."""
    rows = []
    for name, make in FAMILIES.items():
        noisy = [make(gt, i) for i, gt in enumerate(refs)]
        per = [meta_structure_similarity(gt, x, h) for gt, x in zip(refs, noisy)]
        pooled = meta_structure_similarity(refs, noisy, h)
        plain = meta_structure_similarity(refs, noisy, h, correct_noise=False)
        rows.append((name, pooled, float(np.mean(per)), float(np.std(per)), plain))
    return rows


def ranking_holds(rows) -> bool:
    s = {r[0]: r[1] for r in rows}
    rcl = min(s["clean"], s["flip(0.45)"], s["sample(0.1)"])
    pcl = max(s["dilate(1)"], s["erode(1)"])
    return rcl > pcl > s["skeleton"] > s["random(0.1)"]


def markdown(rows, h) -> str:
    lines = [
        "| family | similarity (pooled) | per image, mean ± sd | plain Pearson (pooled) |",
        "|---|---|---|---|",
    ]
    for name, pooled, mean, sd, plain in rows:
        lines.append(f"| {name} | {pooled:.3f} | {mean:.3f} ± {sd:.3f} | {plain:.3f} |")
    verdict = "holds" if ranking_holds(rows) else "does NOT hold"
    lines.append("")
    lines.append(f"Bandwidth h = {h} (box kernel). Paper's order ({PAPER_ORDER}) on the pooled score: **{verdict}**.")
    return "\n".join(lines)


def figure6(path: Path, h: int = 10, seed: int = 0) -> None:
    """GT / RCL (flip, rank 2) / RL (rank 1) and their foreground density maps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gt = synthetic.circle_in_rectangle((256, 256))
    maps = {
        "GT": gt,
        "RCL: flip(0.4), rank 2": noise.flip_labels(gt, 0.4, seed=seed),
        "RL: random(0.5), rank 1": noise.random_labels(gt, 0.5, seed=seed),
    }
    fig, axes = plt.subplots(2, 3, figsize=(7.5, 5.2), dpi=72)
    for col, (title, lab) in enumerate(maps.items()):
        d = density_map(lab, h, classes=[1])[0]
        r = meta_structure_similarity(gt, lab, h)
        axes[0, col].imshow(lab, cmap="gray", interpolation="nearest")
        axes[0, col].set_title(title, fontsize=9)
        axes[1, col].imshow(d, cmap="magma", vmin=0, vmax=1)
        axes[1, col].set_title(f"density h={h}, similarity {r:.2f}", fontsize=9)
        for ax in axes[:, col]:
            ax.set_axis_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=72)
    plt.close(fig)


PAGE = """# Meta-structure density maps

The paper (Luo et al., AAAI 2022) calls the spatial density of each class of a label map its
**meta-structure**. `napari_metastructures.core.density` computes it, predicts it for noisy labels
(Lemma 1) and compares two label maps by it. The widget *Meta-structure density* and the command
`metastructures density` are thin layers over these functions.

## Density maps

`density_map(labels, bandwidth, kernel="box", classes=None, normalize="fraction", ignore_value=255)`
returns a float32 array with one map per class (leading axis).

- **Box kernel** (the paper's Equation 8): the fraction of the `(2h+1)^ndim` window centred on each
  pixel that holds the class. Outside the image counts as no class (zero padding), so the count is
  always divided by the full window size `(2h+1)^ndim`, and maps fall off within `h` of the border.
  Counts are exact integers from running sums along each axis: the cost is O(pixels) per class,
  whatever `h` (see `benchmarks/bench_density.py`).
- **Gaussian kernel**: `scipy.ndimage.gaussian_filter` with sigma = h, zero padding, truncated at 4 sigma.
- **Edges**: `edges="zero"` (default, the paper's) as above; `edges="inside"` divides each pixel's
  count by the part of its window (or kernel mass) inside the image, so a class that fills the image
  has density 1 up to the border. The density widget shows maps with `"inside"` (no dark frame);
  the CLI, the study and the similarity keep the paper's zero padding.
- `normalize="paper"` divides the window count by the paper's `2 N h`, with `N` the number of pixels
  of that class (a kernel density of the class's pixel positions). It is the fraction map times a
  constant per class, so every comparison below is unchanged by it.
- Pixels equal to `ignore_value` (unlabelled, as random sampling leaves them) are no class.

## Lemma 1 and Figure 6

For labels drawn pixel by pixel through a noise transition matrix `Q[j, m] = P(noisy = m | clean = j)`,
the expected density is the clean density mixed by Q: `E[d_m(noisy)] = sum_j Q[j, m] d_j(clean)`
(`expected_density(clean, Q, h)`). For binary labels this is an affine map of the clean density,
`E[d_1] = Q[0,1] + (Q[1,1] - Q[0,1]) d_1(clean)` away from the border, whose slope is the
determinant of Q.

![Figure 6](figures/figure6_density.png)

Figure 6 shows it on a circle inside a rectangular frame. Randomly flipping 40 % of the pixels
(RCL, `Q = [[0.6, 0.4], [0.4, 0.6]]`, rank 2, determinant 0.2) leaves a pixel map that looks like
noise, yet its density is `0.4 + 0.2 d(GT)`: the frame and the disc are plain to see, only with less
contrast. Random labels (RL, every pixel foreground with probability 0.5 whatever the ground truth,
`Q = [[0.5, 0.5], [0.5, 0.5]]`, rank 1) have a flat expected density: nothing of the ground truth
is left. This is Theorem 2 at work: a full-rank Q keeps the meta-structure, a singular one loses it.
Perturbations such as dilation, erosion or skeletonisation are not pixel-wise random, so Lemma 1 does
not apply; they move the density itself (Theorem 1).

## Similarity of two meta-structures

`meta_structure_similarity(a, b, bandwidth, kernel="box")` returns one number, 1 for the same
meta-structure and about 0 for none. It is the **Pearson correlation between the density maps of
each class in the reference `a` and in `b`, over the image interior, averaged over classes**, with
one correction:

- Pearson correlation is invariant to the affine map Lemma 1 predicts, so a flipped or sampled map
  scores like the clean one *in expectation*.
- But one noisy map has a noisy density. At flip 0.45 the signal is a tenth of the clean contrast,
  and at h = 10-25 the plain correlation of a single map is only 0.3-0.6 (last column below).
- So the correlation is disattenuated for that noise. The channel `q_j = P(b = m | a = j)` is
  measured from the pair. Lemma 1 then gives the variance it adds to `b`'s density,
  `sum_x w(x)^2 * sum_j q_j (1 - q_j) d_j(a)`, and that variance is taken out of `b`'s before the
  correlation is formed.
- When `q` does not vary with the clean class (random labels: a rank-1 channel), the expected
  density is flat. There is no meta-structure, the plain correlation (about 0) is kept, and nothing
  is amplified.
- Dilation, erosion and skeletons change pixels deterministically. The correction treats their
  few changed pixels as if they were random, so it lifts their score a little; what is left
  is a real change of density.
- Passing lists of references and label maps pools the statistics over images. Pooling gives a
  much steadier estimate for heavy noise than averaging per-image scores, which are pulled below 1
  by noise and the clip at 1.

## Ranking of the paper's label families

Generated by `python benchmarks/density_ranking.py` ({when}; {seconds:.0f} s). Families: flip 45 %
of the pixels, keep 10 % (the rest ignored), dilate or erode once with a 3x3 element, skeletonise,
random labels with 10 % foreground. Every random family is seeded by the image index.

{tables}

**Reading the tables.**

- With the noise correction, flip(0.45) and sample(0.1) score like the clean labels.
- Dilation and erosion score a little lower; the skeleton and the random labels score lowest.
- Without the correction (last column), one flipped map looks worse than any perturbation. This
  is why the correction exists: the paper's claim is about the expected density.
- On blob-like nuclei the skeleton destroys the density: the order is the paper's. The margin between
  the random families and one-pixel dilation or erosion is small (about 0.003-0.005): moving the
  boundary of a 10-pixel nucleus by one pixel barely changes a density at h >= 10. Smaller `h` or
  stronger perturbations separate them more, at the price of noisier single-map scores.
- The ER tubules are only about 3 pixels wide. One erosion removes whole tubules, so erosion falls
  below the skeleton there. A skeleton of tubules that all have the same width is a scaled copy of
  their density, so at the density level it loses little. Dilation still ranks above the skeleton,
  so "dilate or erode > skeleton" holds.
- The per-image spread of flip(0.45) is the honest price of one noisy map: with 256x256 nuclei
  images its score varies by about ±0.1 from image to image.

## Command line

```bash
metastructures density labels.tif --bandwidth 10 --kernel box --out density.tif
```

This writes a float32 TIFF, with a leading class axis when there are several classes, and a JSON
sidecar with the parameters.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bandwidths", default="10,25")
    parser.add_argument("--out", default=str(ROOT / "docs" / "meta-structure.md"))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    tables = []
    for title, refs in load_references(args.quick).items():
        for h in (int(x) for x in args.bandwidths.split(",")):
            rows = score_table(refs, h)
            table = markdown(rows, h)
            print(f"\n{title}, h={h}\n{table}", flush=True)
            tables.append(f"### {title}, h = {h}\n\n{table}")
    figure6(ROOT / "docs" / "figures" / "figure6_density.png")
    page = PAGE.format(tables="\n\n".join(tables), when=time.strftime("%Y-%m-%d"),
                       seconds=time.perf_counter() - t0)
    Path(args.out).write_text(page)
    print(f"\nwrote {args.out} and docs/figures/figure6_density.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
