"""Paper-ready figure style: column widths, embedded TrueType fonts, colour-blind-safe colours.

Model colours are assigned from a fixed palette (seaborn ``colorblind``) in sorted label
order, so one model keeps its colour in every figure of a report.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

ONE_COLUMN_IN = 3.35  # width of one column of a two-column paper (ACL/IEEE), inches
TWO_COLUMN_IN = 7.0

RC = {
    "pdf.fonttype": 42,  # TrueType: fonts embedded and editable
    "ps.fonttype": 42,
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.bbox": "tight",
    "savefig.dpi": 300,
}


def model_colors(labels: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    palette = sns.color_palette("colorblind", n_colors=max(len(labels), 1))
    return {label: palette[i % len(palette)] for i, label in enumerate(sorted(labels))}


MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", ":", "-.")


def model_styles(labels: Sequence[str]) -> dict[str, dict[str, object]]:
    """Line style per model: colour from the colour-blind palette (10 colours); past ten models
    the marker and dash pattern change too, so no two models look alike."""
    palette = sns.color_palette("colorblind", n_colors=10)
    out = {}
    for i, label in enumerate(sorted(labels)):
        cycle = i // len(palette)
        out[label] = {"color": palette[i % len(palette)], "marker": MARKERS[cycle % len(MARKERS)],
                      "linestyle": LINESTYLES[cycle % len(LINESTYLES)]}
    return out


def save(fig: plt.Figure, stem: str) -> list[str]:
    """Write ``stem.png`` and ``stem.pdf``; return the paths."""
    paths = [f"{stem}.png", f"{stem}.pdf"]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
