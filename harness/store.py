"""SQLite result store: one row per evaluated cell, with full provenance.

Rows are keyed by a content hash of the cell (``cell_key``); writes are ``INSERT OR IGNORE``
inside a transaction, so a re-run never duplicates a row and a crash never leaves half of
one. Per-cell predictions are kept beside the metrics (as ``.npy`` bytes, loaded with
``allow_pickle=False``) so paired statistics can be computed from the store alone.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import faults

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    cell_key TEXT PRIMARY KEY,
    train_key TEXT NOT NULL,
    model TEXT NOT NULL,
    variant TEXT NOT NULL,
    model_options TEXT NOT NULL,
    dataset TEXT NOT NULL,
    train_condition TEXT NOT NULL,
    seed INTEGER NOT NULL,
    corruption TEXT NOT NULL,
    corruption_options TEXT NOT NULL,
    severity INTEGER NOT NULL,
    parameter TEXT,
    parameter_value TEXT,
    schedule TEXT NOT NULL,
    defense TEXT NOT NULL,
    split TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    metrics TEXT NOT NULL,
    n_utterances INTEGER NOT NULL,
    best_epoch INTEGER,
    config_hash TEXT NOT NULL,
    code_version TEXT NOT NULL,
    package_versions TEXT NOT NULL,
    device TEXT NOT NULL,
    wall_time_s REAL NOT NULL,
    created_at TEXT NOT NULL,
    node TEXT,
    deterministic INTEGER,
    title TEXT,
    extractor_set TEXT,
    extraction_stats TEXT
);
CREATE TABLE IF NOT EXISTS predictions (
    cell_key TEXT PRIMARY KEY REFERENCES results(cell_key),
    uids TEXT NOT NULL,
    targets BLOB NOT NULL,
    outputs BLOB NOT NULL,
    groups TEXT
);
CREATE TABLE IF NOT EXISTS trainings (
    train_key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    variant TEXT NOT NULL,
    dataset TEXT NOT NULL,
    train_condition TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    fit TEXT NOT NULL,
    checkpoint TEXT,
    params INTEGER,
    device TEXT NOT NULL,
    wall_time_s REAL NOT NULL,
    created_at TEXT NOT NULL,
    node TEXT
);
CREATE TABLE IF NOT EXISTS artifacts (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS trials (
    tune_key TEXT NOT NULL,
    trial INTEGER NOT NULL,
    variant TEXT NOT NULL,
    dataset TEXT NOT NULL,
    params TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    status TEXT NOT NULL,
    error TEXT,
    train_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tune_key, trial)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    provenance TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

CLEAN = "clean"
"""The clean evaluation cell's corruption (and the clean training condition) in stored rows."""

# Columns added after the first release, as (table, column, SQL type): a store written before
# them gets them (empty) when it is next opened for writing, so old run directories resume.
ADDED_COLUMNS = (("results", "node", "TEXT"), ("trainings", "node", "TEXT"), ("results", "deterministic", "INTEGER"),
                 ("results", "title", "TEXT"), ("predictions", "groups", "TEXT"), ("results", "extractor_set", "TEXT"),
                 ("results", "extraction_stats", "TEXT"))
"""A ``title`` is the corruption's name in words as figures and tables print it
(:meth:`harness.corruption.Corruption.display_title`); a row stored before it has none. A
prediction's ``groups`` are its utterances' dialogue ids (the unit a test-set bootstrap
resamples); predictions stored before them have none. A row's ``extractor_set`` names the
extractor set of its dataset entry (the extractor axis; empty without one), its
``extraction_stats`` the extractors' counts over its test utterances as JSON (e.g. frames
without a face); rows stored before them have neither."""

JSON_COLUMNS = ("model_options", "corruption_options", "metrics", "package_versions")

SQLITE_HEADER = b"SQLite format 3\x00"
TABLES = ("results", "predictions", "trainings", "artifacts", "runs")


class StoreError(ValueError):
    """A result store that cannot be used: not an SQLite file, truncated or corrupt, or without
    mcer-bench's tables. The message names the file and what is wrong with it."""


def check_store(path: str | Path, allow_empty: bool = False) -> None:
    """Raise :class:`StoreError` unless ``path`` is an intact result store; never writes.

    It must start with the SQLite header, pass SQLite's ``quick_check`` (pages, indexes and
    the file length the header records) and hold mcer-bench's tables. A 0-byte file is an
    empty store: accepted with ``allow_empty`` (a run starts it), refused otherwise (a report
    has nothing to read), and left as it is either way.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"result store {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        if allow_empty:
            return
        raise StoreError(f"result store {path} is an empty (0-byte) file: no run has stored anything in it")
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"result store {path} is not readable: {exc.strerror or exc}") from None
    if not header.startswith(SQLITE_HEADER):
        raise StoreError(f"result store {path} is not an SQLite database: it does not start with the SQLite header "
                         f"(its first bytes are {header[:8].hex(' ')}); it was overwritten or is another file")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    # the page count at offset 28 is valid when the "version-valid-for" number equals the change counter
    pages = int.from_bytes(header[28:32], "big") if header[92:96] == header[24:28] else 0
    if len(header) < 100 or (pages and page_size and size < pages * page_size):
        raise StoreError(f"result store {path} is truncated: {size} bytes, but its header records {pages} pages "
                         f"of {page_size} bytes ({pages * page_size} bytes)")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)) as con:
            problems = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"result store {path} is corrupt: {exc}") from None
    if problems != ["ok"]:
        raise StoreError(f"result store {path} is corrupt: {'; '.join(problems[:3])}")
    missing = [t for t in TABLES if t not in tables]
    if missing and tables:
        raise StoreError(f"result store {path} is an SQLite database but not an mcer-bench result store: it lacks "
                         f"the table(s) {', '.join(missing)} (it has {', '.join(sorted(tables))})")
    if missing and not allow_empty:
        raise StoreError(f"result store {path} holds no tables: no run has stored anything in it")


_READ_ONLY: ContextVar[bool] = ContextVar("mcer_bench_store_read_only", default=False)


@contextmanager
def read_only_stores() -> Iterator[None]:
    """Within this block every :class:`ResultStore` is opened read-only, whatever its caller
    asks for: ``mcer-bench report`` builds its report inside it, so a report never writes to
    the store it reads (not the schema, not a journal)."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _from_npy(b: bytes) -> np.ndarray:
    return np.load(io.BytesIO(b), allow_pickle=False)


class ResultStore:
    """The run directory's ``results.sqlite``. Safe to open from several processes: SQLite
    serialises writers, and every write is one transaction."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        """Open (and with ``read_only=False`` create) the store at ``path``. A read-only store
        never writes: not the schema, not a journal mode; its write methods fail."""
        self.path = Path(path)
        self._prediction_groups: bool | None = None
        self.read_only = read_only = read_only or _READ_ONLY.get()
        if read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"result store {self.path} does not exist")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.executescript(SCHEMA)
            for table, column, sql_type in ADDED_COLUMNS:
                if column not in {r[1] for r in con.execute(f"PRAGMA table_info({table})")}:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
        con = sqlite3.connect(self.path, timeout=60.0)
        # A rollback journal rather than WAL: readers (report, --dry-run) open the file read-only
        # and leave nothing behind, which a WAL database does not allow (its -wal/-shm files).
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA synchronous=FULL")
        return con

    # -- writes ---------------------------------------------------------------------
    def add_result(self, row: dict[str, Any], predictions: dict[str, Any] | None = None) -> bool:
        """Insert a result row (and its predictions) unless its ``cell_key`` exists.

        Returns True when the row was written, False when it was already stored.
        """
        values = {k: (json.dumps(v, sort_keys=True) if k in JSON_COLUMNS else v) for k, v in row.items()}
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with closing(self._connect()) as con, con:
            cur = con.execute(f"INSERT OR IGNORE INTO results ({cols}) VALUES ({marks})", list(values.values()))
            written = cur.rowcount == 1
            if written and predictions is not None:
                groups = predictions.get("groups")
                con.execute(
                    "INSERT OR IGNORE INTO predictions (cell_key, uids, targets, outputs, groups) VALUES (?, ?, ?, ?, ?)",
                    (row["cell_key"], json.dumps(list(predictions["uids"])), _npy(predictions["targets"]),
                     _npy(predictions["outputs"]), None if groups is None else json.dumps([str(g) for g in groups])),
                )
            faults.hit("store-before-commit")
        faults.hit("store-after-commit")
        return written

    def add_training(self, row: dict[str, Any]) -> None:
        """Insert or replace the record of a training cell (status ok / failed).

        A row with ``restored=True`` (rebuilt from a checkpoint's metadata after a crash that
        came between the checkpoint and this record) only fills a missing record.
        """
        row = dict(row)
        verb = "INSERT OR IGNORE" if row.pop("restored", False) else "INSERT OR REPLACE"
        values = {k: (json.dumps(v, sort_keys=True) if k == "fit" else v) for k, v in row.items()}
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with closing(self._connect()) as con, con:
            con.execute(f"{verb} INTO trainings ({cols}) VALUES ({marks})", list(values.values()))

    def add_run(self, run_id: str, config: dict[str, Any], config_hash: str, provenance: dict[str, Any],
                created_at: str) -> None:
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
                        (run_id, json.dumps(config, sort_keys=True), config_hash, json.dumps(provenance), created_at))

    def add_artifact(self, kind: str, name: str, payload: dict[str, Any], created_at: str) -> None:
        """Store (or replace) one JSON record a report needs besides the result rows, e.g.
        ``kind="deployment"`` (a model's deployment profile) or ``"dataset_card"``."""
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?)",
                        (kind, name, json.dumps(payload, sort_keys=True), created_at))

    def add_trial(self, row: dict[str, Any]) -> bool:
        """Store one tuning trial (its parameters, validation value and status) unless that
        ``(tune_key, trial)`` is stored already; True when written."""
        values = {k: (json.dumps(v, sort_keys=True) if k == "params" else v) for k, v in row.items()}
        cols, marks = ", ".join(values), ", ".join("?" for _ in values)
        with closing(self._connect()) as con, con:
            return con.execute(f"INSERT OR IGNORE INTO trials ({cols}) VALUES ({marks})",
                               list(values.values())).rowcount == 1

    def trials(self, tune_key: str | None = None) -> list[dict[str, Any]]:
        """Stored trials (of one search, or all), in trial order."""
        where, args = ("WHERE tune_key = ?", (tune_key,)) if tune_key is not None else ("", ())
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            try:
                rows = con.execute(f"SELECT * FROM trials {where} ORDER BY tune_key, trial", args).fetchall()
            except sqlite3.OperationalError as exc:  # a read-only store written before tuning existed
                if "no such table" not in str(exc):
                    raise
                rows = []
        return [{**dict(r), "params": json.loads(r["params"])} for r in rows]

    def delete_failed(self) -> int:
        """Delete every ``failed`` result row (failed rows carry no predictions); return how many.

        Used by ``--retry-failed``: the next run plans those cells again. One transaction, so a
        crash leaves either all of them or none, and a resume runs any cell left without a row.
        """
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM predictions WHERE cell_key IN (SELECT cell_key FROM results WHERE status = 'failed')")
            return con.execute("DELETE FROM results WHERE status = 'failed'").rowcount

    # -- reads ----------------------------------------------------------------------
    def has_schema(self) -> bool:
        """Whether the store's tables exist (False for a new or 0-byte file)."""
        if self.path.stat().st_size == 0:
            return False
        with closing(self._connect()) as con:
            return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'results'").fetchone() \
                is not None

    def artifacts(self, kind: str) -> dict[str, dict[str, Any]]:
        """``name -> payload`` of every artifact of ``kind`` (empty when there is none)."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT name, payload FROM artifacts WHERE kind = ? ORDER BY name", (kind,)).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def code_versions(self) -> dict[str, int]:
        """``code version -> number of result rows`` it computed (empty for a new store)."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT code_version, COUNT(*) FROM results GROUP BY code_version").fetchall()
        return {str(v): int(n) for v, n in rows}

    def outcomes(self) -> pd.DataFrame:
        """Each stored cell's outcome: ``cell_key``, ``status``, ``error`` and where it ran
        (``variant``, ``dataset``, ``seed``, ``corruption``, ``severity``, ``created_at``)."""
        with closing(self._connect()) as con:
            return pd.read_sql_query("SELECT cell_key, status, error, variant, dataset, seed, corruption, severity, "
                                     "created_at FROM results", con)

    def stored_keys(self) -> set[str]:
        with closing(self._connect()) as con:
            return {r[0] for r in con.execute("SELECT cell_key FROM results")}

    def dataframe(self, table: str = "results") -> pd.DataFrame:
        """A table as a DataFrame; for ``results`` the metrics are expanded into columns."""
        if table not in ("results", "trainings", "runs", "trials"):
            raise ValueError(f"table must be 'results', 'trainings', 'runs' or 'trials', got {table!r}")
        with closing(self._connect()) as con:
            df = pd.read_sql_query(f"SELECT * FROM {table}", con)
        if table == "results" and len(df):
            for c in JSON_COLUMNS:
                df[c] = df[c].map(json.loads)
            metrics = pd.json_normalize(df["metrics"].tolist()).add_prefix("metric_")
            df = pd.concat([df.drop(columns=["metrics"]), metrics], axis=1)
        return df

    def predictions(self, cell_key: str) -> dict[str, Any] | None:
        """``{"uids", "targets", "outputs"}`` of a cell, and ``"groups"`` (the dialogue id of each
        utterance) when the store has them (rows written since they were added); ``None`` when
        the cell stored no predictions."""
        with closing(self._connect()) as con:
            if self._prediction_groups is None:  # a store written before the column has none
                self._prediction_groups = "groups" in {c[1] for c in con.execute("PRAGMA table_info(predictions)")}
            has_groups = self._prediction_groups
            cols = "uids, targets, outputs" + (", groups" if has_groups else "")
            r = con.execute(f"SELECT {cols} FROM predictions WHERE cell_key = ?", (cell_key,)).fetchone()
        if r is None:
            return None
        out = {"uids": json.loads(r[0]), "targets": _from_npy(r[1]), "outputs": _from_npy(r[2])}
        if has_groups and r[3] is not None:
            out["groups"] = json.loads(r[3])
        return out

    def runs(self) -> list[dict[str, Any]]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT run_id, config, config_hash, provenance, created_at FROM runs").fetchall()
        return [{"run_id": r[0], "config": json.loads(r[1]), "config_hash": r[2], "provenance": json.loads(r[3]),
                 "created_at": r[4]} for r in rows]

    def to_csv(self, path: str | Path, table: str = "results") -> Path:
        path = Path(path)
        df = self.dataframe(table)
        for c in df.columns:
            if df[c].map(lambda v: isinstance(v, (dict, list))).any():
                df[c] = df[c].map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
        df.to_csv(path, index=False)
        return path

    def count(self, where: str = "", params: Iterable[Any] = ()) -> int:
        with closing(self._connect()) as con:
            return int(con.execute(f"SELECT COUNT(*) FROM results {where}", tuple(params)).fetchone()[0])
