"""Paper tables: LaTeX (booktabs) that fits a two-column page, with a Markdown and HTML twin.

A :class:`Table` holds cells as plain text. Its LaTeX picks the float for its width: a
``table`` when its estimated natural width fits ``\\columnwidth`` of a two-column paper
(IEEEtran: 252 pt), else a ``table*`` spanning ``\\textwidth`` (516 pt); the font shrinks
(``\\small`` -> ``\\footnotesize`` -> ``\\scriptsize``) until the estimate fits, and a table
longer than :data:`MAX_ROWS_PER_FLOAT` rows is split into several floats ("continued"). The
estimate is checked against real TeX by ``nox -s paper``. LaTeX needs ``\\usepackage{booktabs}``.

Builders of the report's tables live in :mod:`reports.main_table`,
:mod:`reports.robustness_tables`, :mod:`reports.ablation_table` and :mod:`reports.info_tables`;
every builder returns a :class:`Table`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COLUMN_WIDTH_PT = 252.0  # \columnwidth of IEEEtran (acmart: 241 pt; our estimate keeps a margin)
TEXT_WIDTH_PT = 516.0  # \textwidth of IEEEtran and acmart's sigconf (7.16 in / 7 in)
MAX_ROWS_PER_FLOAT = 40  # body rows one float holds (a page of a two-column paper fits about 55)
TABCOLSEP_PT = 4.0
FONT_SIZES = ((r"\small", 9.0), (r"\footnotesize", 8.0), (r"\scriptsize", 7.0))

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: Any) -> str:
    """Escape LaTeX special characters in ``text``."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


_UNICODE = {"±": r"$\pm$", "†": r"$^\dagger$", "–": "--", "−": "-", "↓": r"$\downarrow$", "↑": r"$\uparrow$",
            "∞": r"$\infty$", "Δ": r"$\Delta$", "<": r"$<$", ">": r"$>$", "×": r"$\times$", "≥": r"$\geq$",
            "≤": r"$\leq$", "·": r"$\cdot$"}


def tex(text: Any) -> str:
    """Escaped LaTeX with the tables' Unicode symbols as math."""
    return "".join(_UNICODE.get(ch, ch) for ch in escape(text))


# Widths of Computer Modern at 10 pt, in em, coarse but on the safe side: digits are 0.5 em,
# lower-case letters about 0.5 em on average, capitals 0.72 em, symbols as math.
_WIDE = {"±": 0.78, "†": 0.5, "↓": 1.0, "↑": 1.0, "Δ": 0.83, "×": 0.78, "—": 1.0, "–": 0.5, " ": 0.33, ".": 0.28,
         ",": 0.28, "(": 0.39, ")": 0.39, "%": 0.83, "-": 0.33, "=": 0.78, "[": 0.28, "]": 0.28, "@": 0.78}


def text_width_em(text: str, bold: bool = False) -> float:
    """Estimated width of ``text`` in em of the table's font (bold 10% wider)."""
    w = 0.0
    for ch in str(text):
        if ch in _WIDE:
            w += _WIDE[ch]
        elif ch.isdigit():
            w += 0.5
        elif ch.isupper():
            w += 0.72
        elif ch in "ilj'|!:;":
            w += 0.28
        elif ch in "mw":
            w += 0.8
        else:
            w += 0.5
    return w * (1.1 if bold else 1.0)


@dataclass
class Table:
    """Cells as plain text (``±``, ``↓``, ``Δ`` become math in LaTeX); ``bold[i][j]`` marks best
    cells; ``blocks`` are row indices after which a ``\\midrule`` is drawn. A header cell may hold
    ``\\n``: its lines stack in LaTeX and HTML and are joined by a space in Markdown."""

    header: list[str]
    rows: list[list[str]]
    bold: list[list[bool]] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    align: str = ""
    caption: str = ""
    label: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        for i, r in enumerate(self.rows):
            if len(r) != len(self.header):
                raise ValueError(f"table row {i} has {len(r)} cells, header has {len(self.header)}: {r}")
        if not self.bold:
            self.bold = [[False] * len(self.header) for _ in self.rows]
        if len(self.bold) != len(self.rows) or any(len(b) != len(self.header) for b in self.bold):
            raise ValueError(f"bold must be {len(self.rows)} rows of {len(self.header)} flags")
        if not self.align:
            self.align = "l" + "r" * (len(self.header) - 1)
        if len(self.align) != len(self.header):
            raise ValueError(f"align {self.align!r} has {len(self.align)} columns, header has {len(self.header)}")

    # -- layout ------------------------------------------------------------------------
    def natural_width_em(self) -> float:
        """Estimated width of the tabular in em: widest cell of each column plus the column gaps."""
        widths = []
        for j, h in enumerate(self.header):
            w = max(text_width_em(line, bold=True) for line in h.split("\n"))
            for r, b in zip(self.rows, self.bold):
                w = max(w, text_width_em(r[j], b[j]))
            widths.append(w)
        return sum(widths)

    def layout(self) -> tuple[str, str, float]:
        """``(environment, font size command, estimated width in pt)``: the narrowest float and
        the largest font whose estimate fits; ``table*`` with ``\\scriptsize`` when nothing fits
        (``nox -s paper`` then reports the overfull box)."""
        em = self.natural_width_em()
        gaps = 2 * TABCOLSEP_PT * len(self.header)
        for env, limit in (("table", COLUMN_WIDTH_PT), ("table*", TEXT_WIDTH_PT)):
            for size, pt in FONT_SIZES[: 2 if env == "table" else 3]:
                width = em * pt + gaps
                if width <= limit:
                    return env, size, width
        size, pt = FONT_SIZES[-1]
        return "table*", size, em * pt + gaps

    def chunks(self) -> list[tuple[int, int]]:
        """Row ranges ``[start, end)`` of the floats the table is split into."""
        n = len(self.rows)
        if n <= MAX_ROWS_PER_FLOAT:
            return [(0, n)]
        k = math.ceil(n / MAX_ROWS_PER_FLOAT)
        size = math.ceil(n / k)
        return [(i, min(i + size, n)) for i in range(0, n, size)]

    # -- output ------------------------------------------------------------------------
    def _header_latex(self) -> list[str]:
        parts = [h.split("\n") for h in self.header]
        depth = max(len(p) for p in parts)
        lines = []
        for k in range(depth):
            cells = []
            for j, p in enumerate(parts):
                # stacked header lines: pad at the top so the last line sits on the rule
                line = p[k - (depth - len(p))] if k >= depth - len(p) else ""
                cells.append(tex(line) if j == 0 else rf"\multicolumn{{1}}{{{self.align[j]}}}{{{tex(line)}}}"
                             if line else "")
            lines.append(" & ".join(cells) + r" \\")
        return lines

    def latex(self) -> str:
        """One or more floats (see :meth:`chunks`), each with the full header and caption."""
        env, size, _ = self.layout()

        def cell(text: str, b: bool) -> str:
            t = tex(text)
            return rf"\textbf{{{t}}}" if b and t else t

        out = []
        chunks = self.chunks()
        for n, (start, end) in enumerate(chunks):
            lines = [rf"\begin{{{env}}}[t]", r"\centering", size, rf"\setlength{{\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}"]
            caption = self.caption + (" " + self.note if self.note else "")
            if len(chunks) > 1:
                caption = f"{self.caption} (part {n + 1} of {len(chunks)})" + (" " + self.note if self.note else "")
            if caption:
                lines.append(rf"\caption{{{tex(caption)}}}")
            if self.label:
                lines.append(rf"\label{{{self.label}{'' if n == 0 else f'-{n + 1}'}}}")
            lines += [rf"\begin{{tabular}}{{{self.align}}}", r"\toprule", *self._header_latex(), r"\midrule"]
            for i in range(start, end):
                lines.append(" & ".join(cell(c, x) for c, x in zip(self.rows[i], self.bold[i])) + r" \\")
                if i in self.blocks and i != end - 1:
                    lines.append(r"\midrule")
            lines += [r"\bottomrule", r"\end{tabular}", rf"\end{{{env}}}"]
            out.append("\n".join(lines))
        return "\n\n".join(out) + "\n"

    def markdown(self) -> str:
        def cell(text: str, b: bool) -> str:
            t = str(text).replace("|", r"\|")
            return f"**{t}**" if b and t else t

        aligns = ["---" if a == "l" else "---:" if a == "r" else ":---:" for a in self.align]
        lines = []
        if self.caption:
            lines += [f"**{self.caption}**", ""]
        lines += ["| " + " | ".join(h.replace("\n", " ") for h in self.header) + " |", "|" + "|".join(aligns) + "|"]
        lines += ["| " + " | ".join(cell(c, x) for c, x in zip(r, b)) + " |" for r, b in zip(self.rows, self.bold)]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """The table as an HTML ``<table>`` with its caption (for index.html); best cells bold,
        block boundaries as a thicker rule."""
        align = {"l": "left", "r": "right", "c": "center"}
        head = "".join(f"<th style='text-align:{align[a]}'>{'<br>'.join(html.escape(x) for x in h.split(chr(10)))}</th>"
                       for h, a in zip(self.header, self.align))
        body = []
        for i, (r, b) in enumerate(zip(self.rows, self.bold)):
            cls = " class='block-end'" if i in self.blocks and i != len(self.rows) - 1 else ""
            tds = "".join(f"<td style='text-align:{align[a]}'>{'<b>' + html.escape(c) + '</b>' if x and c else html.escape(c)}</td>"
                          for c, x, a in zip(r, b, self.align))
            body.append(f"<tr{cls}>{tds}</tr>")
        ident = f" id='{html.escape(self.label)}'" if self.label else ""
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return (f"<table{ident}><caption>{html.escape(self.caption)}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>{note}")

    def both(self) -> tuple[str, str]:
        return self.latex(), self.markdown()


def best_mask(values: Sequence[float], higher: bool, digits: int | None = None) -> list[bool]:
    """True where ``values`` equal the best (ties all bold; NaN never); compare at printed precision."""
    v = np.asarray(values, dtype=float)
    if digits is not None:
        v = np.round(v, digits)
    if np.isnan(v).all():
        return [False] * len(v)
    best = np.nanmax(v) if higher else np.nanmin(v)
    return [bool(x == best) for x in v]


def fmt(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, ``–`` for NaN, never ``-0.0``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def split_words(text: str, max_chars: int = 12) -> str:
    """``text`` broken at a space into two header lines when it is longer than ``max_chars``."""
    if len(text) <= max_chars or " " not in text:
        return text
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:cut] + "\n" + text[cut + 1:]
