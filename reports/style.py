"""Paper-ready figure style: column widths, embedded TrueType fonts, one fixed look per model.

A model's look (colour, marker, dash pattern) depends on its label alone, never on which other
models a run holds or in which order, so a model keeps its look in every figure of a report and
across runs and reports (:func:`model_style`):

* the full model and the baselines of this repository are pinned in :data:`PINNED` (the full
  model is black and drawn thicker);
* the variants of MCER's ablation set (``mcer[switch=value]``) are pinned by switch: one
  colour family per switch, one shade, marker and dash per value;
* any other label gets a look from a SHA-256 hash of the label (:func:`hashed_style`).

Within one figure no two lines may look alike: :func:`model_styles` resolves the rare hash
collision by moving the later label (in name order) to the next free look.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ONE_COLUMN_IN = 3.5  # \columnwidth of a two-column paper (IEEEtran 252 pt, acmart 241 pt), inches
TWO_COLUMN_IN = 7.16  # \textwidth of a two-column paper (IEEEtran 516 pt), inches

RC = {
    "pdf.fonttype": 42,  # TrueType (Type 42): embedded, editable, accepted by IEEE PDF eXpress / ACM checks
    "ps.fonttype": 42,
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.unicode_minus": True,
    "savefig.bbox": "tight",
    "savefig.dpi": 300,
}

FULL_MODEL_LINEWIDTH = 2.2
FAILED_MARKER = {"marker": "X", "s": 28, "facecolors": "white", "edgecolors": "black", "linewidths": 0.9,
                 "zorder": 5}
"""How a cell with no successful seed is drawn: a hollow cross on the axis floor, never at a value."""

# ------------------------------------------------------------------------------ pinned looks

Style = dict[str, Any]


def _s(color: str, marker: str, linestyle: str, **extra: Any) -> Style:
    return {"color": color, "marker": marker, "linestyle": linestyle, **extra}


PINNED: dict[str, Style] = {
    "mcer": _s("#000000", "o", "-", linewidth=FULL_MODEL_LINEWIDTH, zorder=4),
    "mcer-reference": _s("#555555", "o", ":"),
    # unimodal baselines: dashed
    "text-only": _s("#4477AA", "s", "--"),
    "audio-only": _s("#EE6677", "^", "--"),
    "video-only": _s("#228833", "v", "--"),
    # utterance-level fusion: solid
    "early-fusion": _s("#DDAA33", "D", "-"),
    "late-fusion": _s("#AA3377", "P", "-"),
    "lf-dnn": _s("#66CCEE", "p", "-"),
    "tfn": _s("#332288", "X", "-"),
    "lmf": _s("#117733", "<", "-"),
    "mfn": _s("#882255", ">", "-"),
    "mult": _s("#44AA99", "h", "-"),
    "misa": _s("#999933", "*", "-"),
    # dialogue-level models: dash-dot
    "bc-lstm": _s("#CC6677", "o", "-."),
    "dialoguernn": _s("#BB5566", "s", "-."),
    "dialoguegcn": _s("#0077BB", "d", "-."),
    "mmgcn": _s("#EE7733", "^", "-."),
    "sdt": _s("#009988", "v", "-."),
}

# MCER's ablation switches: one colour family per switch; values take the family's shades in
# the order listed here (a value not listed takes a hashed shade of the family).
ABLATION_FAMILIES: dict[str, tuple[tuple[str, ...], dict[str, int]]] = {
    "denoiser": (("#1F5FA6", "#5B9BD5", "#9CC3E6"), {"diff-dual": 0, "standard": 1, "none": 2}),
    "graphs": (("#1B7837", "#5AAE61", "#A6DBA0", "#00441B"), {"intra": 0, "inter": 1, "unaware": 2, "none": 3}),
    "fusion": (("#B35806", "#F1A340"), {"symmetric": 0, "concat": 1}),
    "filter_gates": (("#762A83",), {"off": 0}),
    "aux_loss": (("#C51B7D",), {"off": 0}),
    "logit_weights": (("#8C510A",), {"equal": 0}),
}
_FAMILY_MARKERS = ("s", "^", "D", "v")
_FAMILY_OFFSET = {"filter_gates": 1, "aux_loss": 2, "logit_weights": 3}
_FAMILY_DASHES = ("--", "-.", ":", (0, (5, 1, 1, 1)))
VARIANT = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<switch>[^=\]]+)=(?P<value>[^\]]*)\]$")

# ------------------------------------------------------------------------------ hashed looks

HASH_COLORS = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#332288", "#117733",
               "#882255", "#44AA99", "#999933", "#EE7733")
HASH_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
HASH_DASHES = ("-", "--", "-.", ":")
N_HASHED = len(HASH_COLORS) * len(HASH_MARKERS) * len(HASH_DASHES)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def hashed_style(label: str, slot_offset: int = 0) -> Style:
    """The look of hash slot ``(sha256(label) + slot_offset) mod N_HASHED``: the same on every
    machine and in every run (Python's ``hash`` is salted per process, so it is not used)."""
    slot = (_digest(label) + slot_offset) % N_HASHED
    color, rest = divmod(slot, len(HASH_MARKERS) * len(HASH_DASHES))
    marker, dash = divmod(rest, len(HASH_DASHES))
    return _s(HASH_COLORS[color], HASH_MARKERS[marker], HASH_DASHES[dash])


def variant_parts(label: str) -> tuple[str, str, str] | None:
    """``(base, switch, value)`` of an ablation label such as ``mcer[graphs=none]``, else None."""
    m = VARIANT.match(label)
    return (m["base"], m["switch"], m["value"]) if m else None


def model_style(label: str) -> Style:
    """The fixed look of ``label`` (colour, marker, dash; see the module doc). A training
    condition suffix (``label+condition``) keeps the model's colour with a dotted line."""
    if label in PINNED:
        return dict(PINNED[label])
    base, plus, condition = label.partition("+")
    if plus and base in PINNED:
        return {**PINNED[base], "linestyle": ":", "marker": hashed_style(condition)["marker"]}
    parts = variant_parts(label)
    if parts is not None and parts[1] in ABLATION_FAMILIES:
        _, switch, value = parts
        shades, order = ABLATION_FAMILIES[switch]
        i = order.get(value, _digest(value) % len(shades))
        k = i + _FAMILY_OFFSET.get(switch, 0)  # one-value switches, drawn together, differ in marker and dash too
        return _s(shades[i % len(shades)], _FAMILY_MARKERS[k % len(_FAMILY_MARKERS)],
                  _FAMILY_DASHES[k % len(_FAMILY_DASHES)])
    return hashed_style(label)


def _look(style: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(style["color"]).lower(), str(style["marker"]), str(style["linestyle"]))


def model_styles(labels: Iterable[str]) -> dict[str, Style]:
    """``label -> look`` for every label, each as :func:`model_style` gives it, except that a
    label whose look another label of the set already has (pinned labels first, then in name
    order) moves to the next free hash slot. The result does not depend on the order of
    ``labels``."""
    unique = sorted(set(labels), key=lambda x: (x not in PINNED, x))
    out: dict[str, Style] = {}
    taken: set[tuple[str, str, str]] = set()
    for label in unique:
        style = model_style(label)
        offset = 1
        while _look(style) in taken:
            style = hashed_style(label, offset)
            offset += 1
        taken.add(_look(style))
        out[label] = style
    return out


def line_kwargs(style: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``Axes.plot`` takes from a look (``linewidth`` and ``zorder`` when set)."""
    keys = ("color", "marker", "linestyle", "linewidth", "zorder")
    return {k: style[k] for k in keys if k in style}


def save(fig: plt.Figure, stem: str) -> list[str]:
    """Write ``stem.png`` and ``stem.pdf`` (fonts embedded as TrueType); return the paths."""
    paths = [f"{stem}.png", f"{stem}.pdf"]
    with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        for p in paths:
            fig.savefig(p)
    plt.close(fig)
    return paths
