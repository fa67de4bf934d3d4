"""The ``mcer-bench`` command line: a thin layer over the Python API.

Every command exits 0 on success, 2 on bad input (with one clear message on stderr naming
what is wrong, before anything is written) and 1 on an unexpected failure. ``run`` also exits
1 when every cell of the sweep failed (after its summary of the failures, grouped by error);
a sweep with some failed cells exits 0: a failed cell is a result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class CLIError(Exception):
    """Bad input from the user: printed as ``mcer-bench: error: ...`` with exit code 2."""


def _key_values(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict, each value read as TOML (else a plain string)."""
    from harness.run.overrides import OverrideError, parse_pairs

    try:
        return dict(parse_pairs(pairs, what))
    except OverrideError as exc:
        raise CLIError(str(exc)) from None


def _include_paths(args: argparse.Namespace) -> None:
    """Import the plugin modules of every ``--include-path`` folder (before any lookup)."""
    from harness.registry import include_path

    for folder in (getattr(args, "global_include_path", None) or []) + (getattr(args, "include_path", None) or []):
        include_path(folder)


# -- list -------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from harness.registry import ALL_REGISTRIES

    kinds = [args.kind] if args.kind else list(ALL_REGISTRIES)
    data = {k: [e.describe() for e in ALL_REGISTRIES[k].entries(args.pattern)] for k in kinds}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from harness.run.plugin_info import list_text

    print(list_text(data))
    return 0


# -- describe ---------------------------------------------------------------------------
def cmd_describe(args: argparse.Namespace) -> int:
    from harness.run import plugin_info

    if args.preset:
        info = plugin_info.preset_info(args.model, args.preset)
        print(json.dumps(info, indent=2) if args.json else plugin_info.preset_text(info))
        return 0
    entry = plugin_info.find_entry(args.model, args.kind)
    info = plugin_info.plugin_info(entry)
    if entry.kind == "model":
        spec, info["data"] = _describe_spec(args)
        info["model"] = plugin_info.model_info(entry.name, spec, _key_values(args.set or [], "--set"), args.flops)
    elif args.set or args.dataset or args.dims or args.flops:
        raise CLIError(f"--set, --dataset, --dims and --flops apply to models; {entry.name!r} is a {entry.kind}")
    print(json.dumps(info, indent=2, default=str) if args.json else plugin_info.describe_text(info))
    return 0


def _describe_spec(args: argparse.Namespace) -> tuple[Any, str]:
    """The DataSpec a model is described on and the words naming it."""
    from harness.data.types import DataSpec
    from harness.registry import DATASETS

    if args.dataset and args.dims:
        raise CLIError("give either --dataset or --dims, not both")
    if args.dims:
        try:
            dims = {k: int(v) for k, v in _key_values(args.dims.split(","), "--dims").items()}
        except (TypeError, ValueError):
            raise CLIError(f"--dims expects MODALITY=INT pairs, e.g. text=768,audio=74,video=35; got {args.dims!r}") \
                from None
        task = "regression" if args.regression else "classification"
        return DataSpec(dims=dims, task=task, num_classes=args.classes if task == "classification" else None,
                        num_speakers=args.speakers), "--dims"
    if args.dataset:
        return DATASETS.create(args.dataset).spec, f"dataset {args.dataset!r}"
    from harness.datasets.synthetic import synthetic_spec

    return synthetic_spec(), "the synthetic dataset's spec"  # without generating its data


# -- run --------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.config import demo_config, parse_config, read_toml
    from harness.run.driver import run_sweep
    from harness.run.plan import make_plan, training_lines

    raw, source = (read_toml(args.config), args.config) if args.config else (demo_config(), "built-in demo")
    raw, source = _with_overrides(raw, source, args)  # the stored config says what ran
    cfg = parse_config(raw, source=source)
    out = Path(args.out) if args.out else Path("runs") / (cfg.run.name if args.config else "demo")
    if args.print_config:
        import tomli_w

        from harness.run.driver import tomlable

        print(tomli_w.dumps(tomlable(raw)), end="")
        return 0
    if args.dry_run:
        from harness.store import ResultStore, check_store

        db = out / "results.sqlite"
        stored: set[str] = set()
        if db.exists():
            check_store(db, allow_empty=True)
            store = ResultStore(db, read_only=True)
            stored = store.stored_keys() if store.has_schema() else set()
        plan = make_plan(cfg)
        print(plan.describe(stored))
        print("\n".join(training_lines(plan)))
        return 0
    summary = run_sweep(cfg, out, raw_config=raw, progress=not args.quiet, retry_failed=args.retry_failed,
                        resume=args.resume, allow_code_change=args.allow_code_change)
    print(f"{summary.cells_written} cells evaluated ({summary.failed} failed), {summary.cells_skipped} already stored, "
          f"{summary.trainings_run} trainings, {summary.wall_time_s:.1f} s")
    from harness.run.failures import failure_lines

    for line in failure_lines(summary.failures, summary.cells_total):
        print(line)
    if summary.all_failed:
        print(f"mcer-bench: every cell of the sweep failed, so no report was written; the results in {out} say why "
              f"for each cell", file=sys.stderr)
        return 1
    if not args.no_report:
        from reports.build import build_report  # matplotlib and seaborn: only when a report is written

        written = build_report(out)
        for path in written["figures"] + written["tables"]:
            print(f"wrote {path}")
    return 0


def _with_overrides(raw: dict[str, Any], source: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """``raw`` with ``--seeds``, ``--limit`` and every ``--set`` applied, and the source that
    config errors then name."""
    from harness.run.overrides import OverrideError, apply_overrides, parse_pairs

    pairs: list[tuple[str, Any]] = []
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
            if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
                raise ValueError
        except ValueError:
            raise CLIError(f"--seeds expects distinct non-negative integers separated by commas (e.g. 0,1,2), "
                           f"got {args.seeds!r}") from None
        pairs.append(("run.seeds", seeds))
    if args.limit is not None:
        if args.limit < 1:
            raise CLIError(f"--limit expects a number of dialogues per split >= 1, got {args.limit}")
        pairs.append(("run.limit", args.limit))
    try:
        pairs += parse_pairs(args.set or [])
        raw = apply_overrides(raw, pairs)
    except OverrideError as exc:
        raise CLIError(str(exc)) from None
    return raw, (f"{source} with --set" if args.set else source)


# -- report -----------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from harness.store import check_store, read_only_stores

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise CLIError(f"run directory {str(run_dir)!r} does not exist" if not run_dir.exists()
                       else f"{str(run_dir)!r} is a file; give the run directory that holds results.sqlite")
    db = run_dir / "results.sqlite"
    if not db.exists():
        raise CLIError(f"{run_dir} has no results.sqlite: is it a run directory made by 'mcer-bench run'?")
    check_store(db)  # read-only: a corrupt, truncated or empty store is refused before any report file
    from harness.run.report_titles import registered_titles
    from reports.build import build_report

    with read_only_stores():
        written = build_report(run_dir, metric=args.metric, titles=registered_titles(db))
    for path in written["figures"] + written["tables"]:
        print(f"wrote {path}")
    return 0


# -- data inspect -----------------------------------------------------------------------
def cmd_data_inspect(args: argparse.Namespace) -> int:
    from harness.registry import DATASETS

    options = _key_values(args.option or [], "--option")
    if args.path in DATASETS and not Path(args.path).exists():
        card = DATASETS.create(args.path, **options).summary()
    else:
        from harness.datasets.detect import inspect_path

        card = inspect_path(args.path, **options)
    print(json.dumps(card, indent=2, default=str) if args.json else _card_text(card))
    return 0


DEFAULT_GALLERY = ("audio-white", "audio-spikes", "audio-reverb", "video-gaussian-blur", "video-occlusion", "video-jpeg")


def cmd_corruptions_gallery(args: argparse.Namespace) -> int:
    from harness.registry import CORRUPTIONS, DATASETS
    from harness.run import gallery

    for n in args.names:
        CORRUPTIONS.get(n)  # unknown names fail here with close matches
    options: dict[str, dict[str, Any]] = {}
    if args.input:
        dialogues = [gallery.media_dialogue(args.input, max_seconds=args.seconds)]
        names = args.names or [n for n in DEFAULT_GALLERY if gallery.media_problem(dialogues[0], n) is None]
        problems = [p for n in names if (p := gallery.media_problem(dialogues[0], n))]
        if problems or not names:
            raise CLIError(f"--input {args.input}: " + ("; ".join(problems) or "none of the default corruptions "
                                                         f"({', '.join(DEFAULT_GALLERY)}) applies to it"))
    else:
        names = args.names or list(DEFAULT_GALLERY)
        dialogues = DATASETS.create("synthetic", n_train=1, n_valid=1, n_test=1, seed=args.seed).splits["test"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, paths = gallery.make_gallery(dialogues, names, out / "corruption_gallery", seed=args.seed, options=options)
    import matplotlib.pyplot as plt

    plt.close(fig)
    for p in paths:
        print(f"wrote {p}")
    for item in gallery.write_media(dialogues, names, out, seed=args.seed, options=options):
        target = f"severity {item.severity} ({item.target})" if item.kind != "txt" else "severities 0..5"
        snr = f", achieved SNR {item.snr_db:.2f} dB" if item.snr_db is not None else ""
        print(f"wrote {item.path}  {item.corruption} {target}{snr}")
    print(f"wrote {out / 'media.json'}")
    return 0


def _card_text(card: dict[str, Any]) -> str:
    lines = [f"{'sequence' if card.get('format') == 'csd-sequence' else 'dataset'}: {card.get('name')}"]
    for key, value in card.items():
        if key != "name":
            lines.append(f"{key}: {json.dumps(value, default=str)}")
    return "\n".join(lines)


def _command_group(sub: Any, name: str, help_text: str) -> Any:
    """A command with subcommands (``mcer-bench NAME SUBCOMMAND``); returns its subparsers."""
    p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    return p.add_subparsers(dest=f"{name}_command", required=True, metavar="SUBCOMMAND")


class _VersionAction(argparse.Action):
    """``--version``: the package version and the code version stored with every result."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from harness import __version__
        from harness.provenance import code_version

        print(f"mcer-bench {__version__} (code version {code_version()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcer-bench", description=(
        "Benchmark multimodal (text, audio, video) emotion recognition models under graded real-world corruptions."))
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version (and the code version stored with results) and exit")
    parser.add_argument("--include-path", action="append", metavar="DIR", dest="global_include_path",
                        help="import the plugin modules (*.py files and packages) of DIR before anything else, as if "
                             "they were installed (repeatable; also accepted after the command)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins = argparse.ArgumentParser(add_help=False)
    plugins.add_argument("--include-path", action="append", metavar="DIR",
                         help="import the plugin modules (*.py files and packages) of DIR before anything else, "
                              "as if they were installed (repeatable)")

    p = sub.add_parser("list", help="list registered plugins", description="List registered plugins by kind.",
                       parents=[plugins])
    p.add_argument("kind", nargs="?", choices=["models", "datasets", "corruptions", "defenses", "extractors"],
                   help="only this kind (default: all kinds)")
    p.add_argument("--pattern", default="*", help="shell-style glob on plugin names (default: *)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("describe", help="a plugin's options (type, default, allowed values); a model's parameters",
                       parents=[plugins],
                       description="Print NAME's options with their types, defaults and allowed values. For a model "
                                   "also its blocks and parameter count, built on the synthetic dataset's spec (or "
                                   "--dataset / --dims); --flops adds forward FLOPs per utterance; --preset P shows a "
                                   "reference configuration against its reference's parameter count.")
    p.add_argument("model", metavar="NAME", help="registered plugin name (see 'mcer-bench list'), usually a model")
    p.add_argument("--kind", choices=["models", "datasets", "corruptions", "defenses", "extractors"],
                   help="look NAME up in this registry only (default: models first, then the others)")
    p.add_argument("--preset", metavar="P", help="describe the model's reference configuration P: parameters against "
                                                 "the reference's, the reference (repository, file, commit), the recipe")
    p.add_argument("--dataset", help="registered dataset whose DataSpec to build the model on (loads it)")
    p.add_argument("--dims", help="explicit input dims instead of a dataset, e.g. text=1024,audio=1582,video=342")
    p.add_argument("--classes", type=int, default=6, help="number of classes with --dims (default: 6)")
    p.add_argument("--speakers", type=int, default=2, help="number of speakers with --dims (default: 2)")
    p.add_argument("--regression", action="store_true", help="regression head instead of classes, with --dims")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="model option (repeatable), value in TOML syntax")
    p.add_argument("--flops", action="store_true", help="also count forward FLOPs per utterance (a few seconds)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("run", help="run a sweep (default: the built-in demo) and write its report", parents=[plugins],
                       description="Expand a TOML sweep into training and evaluation cells, print the plan, run the "
                                   "cells not yet stored in OUT/results.sqlite, then build the report.")
    p.add_argument("config", nargs="?", help="sweep file in TOML (omit for the built-in demo on the synthetic dataset)")
    p.add_argument("--out", help="run directory (default: runs/<run.name>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config key, e.g. train.epochs=3, models.0.options.hidden=16, "
                        "datasets.0.options.path=\"data/x.pkl\" (repeatable; value in TOML syntax; validated like the file)")
    p.add_argument("--seeds", help="override run.seeds, e.g. 0,1,2")
    p.add_argument("--limit", type=int, metavar="N",
                   help="smoke run: only the first N dialogues of each split (sets run.limit; results are kept apart "
                        "from full runs)")
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
                       description="Rebuild every figure and table of RUN_DIR from results.sqlite alone (opened "
                                   "read-only).")
    p.add_argument("run_dir", help="a directory written by 'mcer-bench run'")
    p.add_argument("--metric", help="headline metric (default: the config's report.metric, else wf1 / mae)")
    p.set_defaults(func=cmd_report)

    from harness.run.compare import add_parser as add_compare_parser

    add_compare_parser(sub)  # mcer-bench compare RUN_DIR... --out DIR

    q = _command_group(sub, "data", "dataset tools").add_parser(
        "inspect", help="detect a dataset's format, load it and print its card", parents=[plugins],
        description="Detect the format of PATH (a file or folder, or a registered dataset name), load it and print "
                    "the dataset card. A single CMU-SDK .csd feature file is described on its own (entries, dims, "
                    "metadata, interval coverage).")
    q.add_argument("path", help="dataset file or folder, or a registered dataset name such as 'synthetic'")
    q.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="loader option (repeatable; value in TOML syntax), e.g. --option label=\"sentiment\"")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_data_inspect)

    q = _command_group(sub, "corruptions", "corruption tools").add_parser(
        "gallery", help="corruptions x severities 0..5: a figure, WAV files and GIFs", parents=[plugins],
        description="Apply corruptions at severities 0..5 to one utterance (a synthetic one, or your own recording "
                    "with --input) and write a figure (PNG, PDF), a WAV per audio corruption and severity with the "
                    "achieved SNR of additive noise, a GIF per video corruption and severity, and the transcripts of "
                    "text corruptions.")
    q.add_argument("names", nargs="*", help=f"corruption names (default: {' '.join(DEFAULT_GALLERY)})")
    q.add_argument("--input", metavar="MEDIA",
                   help="your own recording (speech.wav, clip.mp4, ...; decoded with PyAV at 16 kHz / 10 fps) instead "
                        "of a synthetic utterance; only the corruptions its streams allow apply")
    q.add_argument("--seconds", type=float, default=10.0, help="with --input: use the first SECONDS (default: 10)")
    q.add_argument("--out", default="gallery", help="output directory (default: gallery)")
    q.add_argument("--seed", type=int, default=0, help="seed of the utterance and the corruptions (default: 0)")
    q.set_defaults(func=cmd_corruptions_gallery)
    return parser


def _error_types(*names: str) -> tuple[type[BaseException], ...]:
    """The exception classes ``module:Class`` of modules already imported (an exception of a
    module never imported cannot have been raised), so the command imports only what it runs."""
    found = []
    for name in names:
        module, _, attr = name.partition(":")
        if module in sys.modules:
            found.append(getattr(sys.modules[module], attr))
    return tuple(found)


USAGE_ERRORS = ("harness.errors:RegistryError", "harness.run.config:ConfigError", "harness.run.plan:SweepError",
                "harness.checkpoint:CheckpointError")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _include_paths(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mcer-bench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader stopped early (| head): end quietly, like a shell tool killed by SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if isinstance(exc, (CLIError, FileNotFoundError, ValueError, *_error_types(*USAGE_ERRORS))):
            # one line per problem, each with the prefix (a config error may list several)
            for line in (str(exc) or type(exc).__name__).splitlines() or [""]:
                print(f"mcer-bench: error: {line}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, _error_types("harness.run.executors:WorkerLostError")):
            print(f"mcer-bench: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
