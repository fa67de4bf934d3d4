"""Turn stored result rows into per-(model, corruption, severity) summaries across seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from harness.store import CLEAN


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (NaN-free). One value gives (v, v)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _first(g: pd.DataFrame, col: str) -> str:
    """The first stored value of ``col`` in ``g`` ("" when none)."""
    if col not in g.columns or not g[col].notna().any():
        return ""
    return str(g[col].dropna().iloc[0])


def corruption_titles(rows: pd.DataFrame, fallback: Mapping[str, str] | None = None) -> dict[str, str]:
    """``corruption label -> title in words`` for every corruption of result ``rows`` (a
    ``ResultStore.dataframe()``), as the rows store it (``title``, like ``parameter``). A label
    whose rows hold no title (a store written before titles were stored) takes ``fallback``'s,
    else the label itself."""
    fallback = fallback or {}
    out: dict[str, str] = {}
    for label, g in rows[rows["corruption"] != CLEAN].groupby("corruption", sort=True):
        out[str(label)] = _first(g, "title") or fallback.get(str(label), str(label))
    return out


def curves(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std and 95% bootstrap CI of ``metric`` over seeds for every curve point.

    The clean row (severity 0) is repeated under every corruption so that each curve starts
    at the model's clean score. Failed cells are counted in ``failed`` and excluded from the
    mean; a point with no successful seed has NaN statistics.
    """
    col = f"metric_{metric}"
    if col not in df.columns:
        raise ValueError(f"metric {metric!r} is not in the stored results; available: "
                         f"{sorted(c[7:] for c in df.columns if c.startswith('metric_'))}")
    df = df.copy()
    clean = df[df["corruption"] == CLEAN]
    corrs = sorted(set(df["corruption"]) - {CLEAN})
    parts = [df[df["corruption"] != CLEAN]]
    for c in corrs or [CLEAN]:
        parts.append(clean.assign(corruption=c))
    df = pd.concat(parts, ignore_index=True)
    rows = []
    keys = ["dataset", "variant", "corruption", "defense", "severity"]
    df["defense"] = df["defense"].fillna("none")
    for key, g in df.groupby(keys, sort=True):
        ok = g[g["status"] == "ok"][col].dropna().to_numpy(dtype=float)
        lo, hi = bootstrap_ci(ok)
        rows.append({**dict(zip(keys, key)), "mean": float(ok.mean()) if len(ok) else float("nan"),
                     "std": float(ok.std(ddof=1)) if len(ok) > 1 else 0.0, "ci_low": lo, "ci_high": hi,
                     "n_seeds": len(ok), "failed": int((g["status"] != "ok").sum()),
                     "parameter": _first(g, "parameter"), "parameter_value": _first(g, "parameter_value")})
    return pd.DataFrame(rows)


def model_groups(labels: Sequence[str], full_model: str | None = None,
                 ablated: Sequence[str] = ()) -> list[list[str]]:
    """Row order of tables and heatmaps: ``[[full model, baselines...], [ablation variants...]]``
    (each group sorted by name, the full model first; empty groups left out)."""
    labels = list(dict.fromkeys(labels))
    variants = [x for x in sorted(labels) if x in set(ablated) and x != full_model]
    main = sorted(x for x in labels if x not in set(variants) and x != full_model)
    if full_model in labels:
        main.insert(0, full_model)
    return [g for g in (main, variants) if g]
