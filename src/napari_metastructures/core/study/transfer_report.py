"""Tables, sentences and the figure of the transfer study (:mod:`.transfer`)."""
from __future__ import annotations

#: How each pre-training kind is named in tables and figures.
NAMES = {"none": "no pre-training (random init)", "complete": "complete masks",
         "misannotate": "instance misannotation (50 % moved)", "misclassify": "misclassification, random classes",
         "random": "random labels (10 %)", "pu": "50 % of instances (PU)", "igtt": "iGTT, no labels"}


#: One colour per kind (no pre-training in black, iGTT in red, thicker).
COLOURS = {"none": "k", "complete": "tab:blue", "misannotate": "tab:orange", "misclassify": "tab:green",
           "random": "tab:purple", "pu": "tab:brown", "igtt": "tab:red"}


def cell(s: dict) -> str:
    """``mean ± sd (min-max)`` of one summary row."""
    return f"{s['mean']:.3f} ± {s['sd']:.3f} ({s['min']:.3f}-{s['max']:.3f})"


def _find(summary: list, kind: str, budget: int) -> dict:
    return next(s for s in summary if s["kind"] == kind and s["budget"] == budget)


def table_lines(summary: list, kinds, budgets) -> list:
    """A markdown table: one row per pre-training kind, one column per budget."""
    lines = ["| pre-training | " + " | ".join(f"{b} image(s)" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for kind in kinds:
        lines.append(f"| {NAMES[kind]} | " + " | ".join(cell(_find(summary, kind, b)) for b in budgets) + " |")
    return lines


def verdict(summary: list, a: str, b: str, budget: int) -> str:
    """One sentence comparing kind ``a`` with kind ``b`` at ``budget``: mean difference, seed ranges."""
    sa, sb = _find(summary, a, budget), _find(summary, b, budget)
    diff = sa["mean"] - sb["mean"]
    apart = sa["min"] > sb["max"] or sb["min"] > sa["max"]
    word = "above" if diff > 0 else "below"
    sep = ("and every seed of one lies above every seed of the other" if apart
           else f"but the seed ranges overlap, so {sa['n']} seeds do not separate them")
    return (f"at {budget} image(s), {NAMES[a]} is {abs(diff):.3f} {word} {NAMES[b]} "
            f"({sa['mean']:.3f} vs {sb['mean']:.3f}), {sep}")


def monotone_note(summary: list, kind: str = "none") -> str:
    """A sentence when ``kind``'s mean Dice does not rise with the budget (a sign of a noisy schedule)."""
    rows = sorted((s for s in summary if s["kind"] == kind), key=lambda s: s["budget"])
    means = [s["mean"] for s in rows]
    if len(means) < 2 or all(b >= a for a, b in zip(means, means[1:])):
        return ""
    return (f"{NAMES[kind]} does not improve steadily with more labels ("
            + ", ".join(f"{s['budget']}: {s['mean']:.3f}" for s in rows)
            + "): with this fine-tuning schedule the seed-to-seed spread is as large as the effects, so the "
              "ordering between rows is not reliable")


def figure(summary: list, budgets, xlabel: str, title: str) -> bytes:
    """PNG bytes: test Dice against budget, mean ± sd, one line per kind."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for kind in dict.fromkeys(s["kind"] for s in summary):
        rows = [s for s in summary if s["kind"] == kind]
        style = {"lw": 2.4 if kind in ("none", "igtt") else 1.2, "color": COLOURS.get(kind)}
        ax.errorbar([r["budget"] for r in rows], [r["mean"] for r in rows], yerr=[r["sd"] for r in rows],
                    marker="o", capsize=3, label=NAMES[kind], **style)
    ax.set_xscale("log")
    ax.set_xticks(list(budgets), [str(b) for b in budgets])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test Dice (mean ± sd over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
