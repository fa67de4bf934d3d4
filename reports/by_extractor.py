"""Robustness by extractor: the same models under the same corruptions, one extractor set each.

A dataset entry with ``extractor_sets`` runs once per set, as the dataset ``<label>[<set>]``,
and each of its rows records its ``extractor_set``. For every such entry this section writes

* a table: one row per model; per extractor set its clean score and its AURC under each
  corruption and their mean (the headline metric, seed-mean curves, as in the robustness
  summary of each dataset);
* a figure: the robustness curves faceted by extractor set (columns) and corruption (rows),
  one line per model.

Stores written before the extractor axis, or runs without one, get no such section.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from harness.metrics import metric as metric_info
from reports.aggregate import curves
from reports.curves import _draw_panel, _format_axes
from reports.frames import Report, RunFrames, Section
from reports.latex import Table, best_mask, fmt
from reports.metric_sets import chosen_headline, task_of
from reports.robustness import robustness_summary
from reports.style import RC, TWO_COLUMN_IN, line_kwargs, save


def axis_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The result rows of dataset entries with extractor sets, with ``base``: the entry's label
    (``speech`` for the dataset ``speech[is10]``)."""
    if "extractor_set" not in results.columns:
        return results.iloc[0:0].assign(base=pd.Series(dtype=str))
    rows = results[results["extractor_set"].notna() & (results["extractor_set"] != "")].copy()
    suffix = "[" + rows["extractor_set"].astype(str) + "]"
    rows["base"] = [d[: -len(s)] if d.endswith(s) else d for d, s in zip(rows["dataset"], suffix)]
    return rows


def set_order(rows: pd.DataFrame) -> list[str]:
    """Extractor sets in the order their rows were first stored (the config's order)."""
    return list(dict.fromkeys(rows.sort_values("created_at")["extractor_set"]))


def robustness_by_extractor_table(rob: pd.DataFrame, metric: str, sets: dict[str, str], models: list[str],
                                  titles: dict[str, str], base: str) -> Table:
    """Rows: ``models``; per extractor set (``sets``: set -> its dataset label) the clean score,
    the AURC under each corruption and their mean; best per column in bold."""
    m = metric_info(metric)
    corrs = sorted(rob["corruption"].unique(), key=lambda c: titles.get(c, c))
    header, columns = ["Model"], []
    for name, dataset in sets.items():
        r = rob[rob["dataset"] == dataset]

        def value(v: str, col: str, corr: str | None = None, r: pd.DataFrame = r) -> float:
            sel = r[(r["variant"] == v) & ((r["corruption"] == corr) if corr else True)][col].dropna()
            return float(sel.mean()) * m.scale if len(sel) else float("nan")

        parts = [("clean", lambda v: value(v, "m0"))]
        parts += [(titles.get(c, c), lambda v, c=c: value(v, "aurc", c)) for c in corrs] if len(corrs) > 1 else []
        parts += [("mean AURC" if len(corrs) > 1 else "AURC", lambda v: value(v, "aurc"))]
        for what, get in parts:
            vals = [get(v) for v in models]
            header.append(f"{name}\n{what}")
            columns.append(([fmt(x, m.decimals) for x in vals], best_mask(vals, m.higher_is_better, m.decimals)))
    rows = [[v] + [c[0][i] for c in columns] for i, v in enumerate(models)]
    bold = [[False] + [c[1][i] for c in columns] for i in range(len(models))]
    unit = f" ({m.unit})" if m.unit else ""
    note = (f"{m.display}{unit}, {'higher' if m.higher_is_better else 'lower'} is better: per extractor set, the clean "
            f"score and the area under the seed-mean severity curve (AURC, divided by the severity span) under "
            f"{'each corruption and their mean' if len(corrs) > 1 else 'the corruption'}. Each set's models trained "
            f"on that set's clean features and were evaluated on corrupted media re-extracted by it. Best per column "
            f"in bold.")
    return Table(header, rows, bold, caption=f"Robustness by extractor on {base} ({m.display}).",
                 label=f"tab:robustness-by-extractor-{base}", note=note)


def robustness_by_extractor_figure(summary: pd.DataFrame, metric: str, sets: dict[str, str], models: list[str],
                                   styles: dict, titles: dict[str, str], stem: str | Path) -> list[str]:
    """Curves of ``summary`` (:func:`reports.aggregate.curves`): one column per extractor set,
    one row per corruption, one line per model with its 95% band; PNG and PDF."""
    m = metric_info(metric)
    data = summary[summary["defense"] == "none"]
    corrs = sorted(data["corruption"].unique(), key=lambda c: titles.get(c, c))
    ncols, nrows = len(sets), len(corrs)
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(min(TWO_COLUMN_IN, 2.4 * ncols + 0.6), 1.9 * nrows + 0.5),
                                 squeeze=False, sharey=True)
        for j, (name, dataset) in enumerate(sets.items()):
            for i, corr in enumerate(corrs):
                panel = data[(data["dataset"] == dataset) & (data["corruption"] == corr)]
                if panel.empty:
                    axes[i, j].set_visible(False)
                    continue
                _draw_panel(axes[i, j], panel, models, styles, m.scale, True, None)
                _format_axes(axes[i, j], panel, f"{name}: {titles.get(corr, corr)}")
        for ax in axes[:, 0]:
            ax.set_ylabel(m.label())
        handles = [Line2D([], [], **line_kwargs(styles[v]), label=v) for v in models]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False,
                   bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout()
        return save(fig, str(stem))


def robustness_by_extractor(rep: Report, run: RunFrames) -> Section | None:
    """The section (see the module doc); ``None`` when no dataset entry has extractor sets."""
    axis = axis_rows(run.results)
    axis = axis[axis["base"].isin(set(axis.loc[axis["corruption"] != "clean", "base"]))]  # entries with corruptions
    if axis.empty:
        return None
    sec = rep.section("Robustness by extractor")
    for base, rows in axis.groupby("base", sort=True):
        sets = {s: str(rows.loc[rows["extractor_set"] == s, "dataset"].iloc[0]) for s in set_order(rows)}
        card = run.cards.get(next(iter(sets.values()))) or {}
        headline = chosen_headline(run.metric, task_of(rows), (card.get("spec") or {}).get("metric_set"))
        h = metric_info(headline)
        summary = curves(rows.drop(columns=["base"]), headline, run.predictions, run.n_boot)
        rob = robustness_summary(summary, headline)
        models = sorted(rows["variant"].unique(), key=lambda v: (v != run.full_model, v))
        rep.csv(rob, run.run_dir / "tables" / f"robustness_by_extractor_{base}.csv")
        rep.table(sec, f"robustness_by_extractor_{base}",
                  robustness_by_extractor_table(rob, headline, sets, models, run.titles, base),
                  f"Robustness by extractor on {base} ({h.display})")
        paths = robustness_by_extractor_figure(summary, headline, sets, models, run.styles, run.titles,
                                               run.run_dir / "figures" / f"robustness_by_extractor_{base}")
        rep.figure(sec, paths, f"Robustness curves by extractor on {base}",
                   f"{h.display} of each model as each corruption (rows) grows harsher, one column per extractor "
                   f"set: every model trained on that set's clean features and was tested on corrupted media "
                   f"re-extracted by it. Lines are means over seeds, bands their 95% intervals. A set whose lines "
                   f"fall less keeps more of what the corruption leaves.")
    return sec if sec.items else None
