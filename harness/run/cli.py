"""The ``mcer-bench`` command line: a thin layer over the Python API.

Every command exits 0 on success, 2 on bad input (with one clear message on stderr naming
what is wrong) and 1 on an unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class CLIError(Exception):
    """Bad input from the user: printed as ``mcer-bench: error: ...`` with exit code 2."""


def _parse_value(text: str) -> Any:
    """Interpret a ``--set`` value as TOML (numbers, booleans, strings, lists), else a string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _key_values(pairs: Sequence[str], what: str) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise CLIError(f"{what} expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


# -- list -------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from harness.registry import ALL_REGISTRIES

    kinds = [args.kind] if args.kind else list(ALL_REGISTRIES)
    data = {k: [e.describe() for e in ALL_REGISTRIES[k].entries(args.pattern)] for k in kinds}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for kind, entries in data.items():
        print(f"{kind} ({len(entries)}):")
        for e in entries:
            print(f"  {e['name']:<24} {e['summary']}")
    return 0


# -- describe ---------------------------------------------------------------------------
def cmd_describe(args: argparse.Namespace) -> int:
    from harness.data.types import DataSpec
    from harness.describe import describe_model
    from harness.registry import DATASETS, MODELS

    if args.dataset and args.dims:
        raise CLIError("give either --dataset or --dims, not both")
    if args.dims:
        dims = {k: int(v) for k, v in _key_values(args.dims.split(","), "--dims").items()}
        task = "regression" if args.regression else "classification"
        spec = DataSpec(dims=dims, task=task, num_classes=args.classes if task == "classification" else None,
                        num_speakers=args.speakers)
    else:
        spec = DATASETS.create(args.dataset or "synthetic", **({"keep_raw": False} if not args.dataset else {})).spec
    options = _key_values(args.set or [], "--set")
    model = MODELS.create(args.model, spec, **options)
    info = {"name": args.model, "options": options, **describe_model(model, spec)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.model}  ({info['model']}, {info['level']} level)")
    print(f"  data: {spec.to_dict()}")
    print(f"  parameters: {info['params']:,} ({info['trainable_params']:,} trainable)")
    print(f"  FLOPs per utterance: {info['flops_per_utterance']:,.0f}")
    print("  blocks:")
    for b in info["blocks"]:
        print(f"    {b['name']:<20} {b['type']:<24} {b['params']:>12,}")
    return 0


# -- run --------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.config import demo_config, parse_config, read_toml
    from harness.run.driver import run_sweep
    from harness.run.plan import make_plan, training_lines

    if args.config:
        raw = read_toml(args.config)
        cfg = parse_config(raw, source=args.config)
        default_out = Path("runs") / cfg.run.name
    else:
        raw = demo_config()
        cfg = parse_config(raw, source="built-in demo")
        default_out = Path("runs") / "demo"
    out = Path(args.out) if args.out else default_out
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
            if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
                raise ValueError
        except ValueError:
            raise CLIError(f"--seeds expects distinct non-negative integers separated by commas (e.g. 0,1,2), "
                           f"got {args.seeds!r}") from None
        cfg.run.seeds = seeds
        raw = {**raw, "run": {**raw.get("run", {}), "seeds": seeds}}  # the stored config says what ran
    if args.print_config:
        import tomli_w

        from harness.run.driver import tomlable

        print(tomli_w.dumps(tomlable(raw)), end="")
        return 0
    if args.dry_run:
        from harness.store import ResultStore

        db = out / "results.sqlite"
        stored = ResultStore(db, read_only=True).stored_keys() if db.is_file() and db.stat().st_size else set()
        plan = make_plan(cfg)
        print(plan.describe(stored))
        print("\n".join(training_lines(plan)))
        return 0
    summary = run_sweep(cfg, out, raw_config=raw, progress=not args.quiet, retry_failed=args.retry_failed,
                        resume=args.resume, allow_code_change=args.allow_code_change)
    print(f"{summary.cells_written} cells evaluated ({summary.failed} failed), {summary.cells_skipped} already stored, "
          f"{summary.trainings_run} trainings, {summary.wall_time_s:.1f} s")
    if not args.no_report:
        from reports.build import build_report  # matplotlib and seaborn: only when a report is written

        written = build_report(out)
        for path in written["figures"] + written["tables"]:
            print(f"wrote {path}")
    return 0


# -- report -----------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from reports.build import build_report

    written = build_report(args.run_dir, metric=args.metric)
    for path in written["figures"] + written["tables"]:
        print(f"wrote {path}")
    return 0


# -- data inspect -----------------------------------------------------------------------
def cmd_data_inspect(args: argparse.Namespace) -> int:
    from harness.registry import DATASETS

    if args.path in DATASETS:
        card = DATASETS.create(args.path).summary()
    else:
        try:
            from harness.datasets.detect import dataset_card, load_path
        except ImportError:
            raise CLIError(f"{args.path!r} is not a registered dataset name, and format detection of files is not "
                           f"available in this build") from None
        card = dataset_card(load_path(args.path))
    print(json.dumps(card, indent=2, default=str) if args.json else _card_text(card))
    return 0


DEFAULT_GALLERY = ("audio-white", "audio-spikes", "audio-reverb", "video-gaussian-blur", "video-occlusion", "video-jpeg")


def cmd_corruptions_gallery(args: argparse.Namespace) -> int:
    from corruptions.gallery import make_gallery
    from harness.registry import CORRUPTIONS, DATASETS

    names = args.names or list(DEFAULT_GALLERY)
    for n in names:
        CORRUPTIONS.get(n)  # unknown names fail here with close matches
    ds = DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=1, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, paths = make_gallery(ds.splits["test"], names, out / "corruption_gallery", seed=args.seed)
    for p in paths:
        print(f"wrote {p}")
    return 0


def _card_text(card: dict[str, Any]) -> str:
    lines = [f"dataset: {card.get('name')}"]
    for key, value in card.items():
        if key != "name":
            lines.append(f"{key}: {json.dumps(value, default=str)}")
    return "\n".join(lines)


def _command_group(sub: Any, name: str, help_text: str) -> Any:
    """A command with subcommands (``mcer-bench NAME SUBCOMMAND``); returns its subparsers."""
    p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    return p.add_subparsers(dest=f"{name}_command", required=True, metavar="SUBCOMMAND")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcer-bench", description=(
        "Benchmark multimodal (text, audio, video) emotion recognition models under graded real-world corruptions."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list registered plugins", description="List registered plugins by kind.")
    p.add_argument("kind", nargs="?", choices=["models", "datasets", "corruptions", "defenses", "extractors"],
                   help="only this kind (default: all kinds)")
    p.add_argument("--pattern", default="*", help="shell-style glob on plugin names (default: *)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("describe", help="architecture summary, parameter count and FLOPs of a model",
                       description="Build MODEL for a dataset (or explicit dims) and print its blocks, parameter "
                                   "count and forward FLOPs per utterance (torch's flop counter).")
    p.add_argument("model", help="registered model name (see 'mcer-bench list models')")
    p.add_argument("--dataset", help="registered dataset whose DataSpec to use (default: synthetic)")
    p.add_argument("--dims", help="explicit input dims instead of a dataset, e.g. text=1024,audio=1582,video=342")
    p.add_argument("--classes", type=int, default=6, help="number of classes with --dims (default: 6)")
    p.add_argument("--speakers", type=int, default=2, help="number of speakers with --dims (default: 2)")
    p.add_argument("--regression", action="store_true", help="regression head instead of classes, with --dims")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="model option (repeatable), value in TOML syntax")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("run", help="run a sweep (default: the built-in demo) and write its report",
                       description="Expand a TOML sweep into training and evaluation cells, print the plan, run the "
                                   "cells not yet stored in OUT/results.sqlite, then build the report.")
    p.add_argument("config", nargs="?", help="sweep file in TOML (omit for the built-in demo on the synthetic dataset)")
    p.add_argument("--out", help="run directory (default: runs/<run.name>)")
    p.add_argument("--seeds", help="override run.seeds, e.g. 0,1,2")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--print-config", action="store_true",
                   help="print the sweep's configuration as TOML (the built-in demo without CONFIG) and exit")
    p.add_argument("--resume", action="store_true",
                   help="continue a run directory that already holds results: stored cells are skipped, the rest run "
                        "(without it such a directory is refused)")
    p.add_argument("--allow-code-change", action="store_true",
                   help="with --resume: keep results another code version computed (refused by default, naming both "
                        "versions)")
    p.add_argument("--retry-failed", action="store_true",
                   help="resume, and run the cells stored as failed again (their rows are replaced); default: keep them")
    p.add_argument("--no-report", action="store_true", help="skip building figures and tables")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="rebuild figures and tables of a run directory from its store",
                       description="Rebuild every figure and table of RUN_DIR from results.sqlite alone.")
    p.add_argument("run_dir", help="a directory written by 'mcer-bench run'")
    p.add_argument("--metric", help="headline metric (default: the config's report.metric, else wf1 / mae)")
    p.set_defaults(func=cmd_report)

    from harness.run.compare import add_parser as add_compare_parser

    add_compare_parser(sub)  # mcer-bench compare RUN_DIR... --out DIR

    q = _command_group(sub, "data", "dataset tools").add_parser("inspect", help="detect a dataset's format, load it and print its card",
                        description="Detect the format of PATH (a file or folder, or a registered dataset name), "
                                    "load it and print the dataset card.")
    q.add_argument("path", help="dataset file or folder, or a registered dataset name such as 'synthetic'")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_data_inspect)

    q = _command_group(sub, "corruptions", "corruption tools").add_parser("gallery", help="figure of corruptions x severities 0..5 on a synthetic utterance",
                        description="Draw a grid (rows: corruptions, columns: severities 0..5) of one synthetic "
                                    "utterance's frames or spectrogram; writes PNG and PDF.")
    q.add_argument("names", nargs="*", help=f"corruption names (default: {' '.join(DEFAULT_GALLERY)})")
    q.add_argument("--out", default="gallery", help="output directory (default: gallery)")
    q.add_argument("--seed", type=int, default=0, help="seed of the utterance and the corruptions (default: 0)")
    q.set_defaults(func=cmd_corruptions_gallery)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from harness.checkpoint import CheckpointError
    from harness.registry import RegistryError
    from harness.run.config import ConfigError
    from harness.run.executors import WorkerLostError
    from harness.run.plan import SweepError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ConfigError, RegistryError, SweepError, CheckpointError, FileNotFoundError, ValueError) as exc:
        msg = str(exc)
        print(f"mcer-bench: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mcer-bench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except WorkerLostError as exc:
        print(f"mcer-bench: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
