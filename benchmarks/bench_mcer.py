"""Speed and memory of MCER at the released IEMOCAP configuration, against its physical floors
(CPU) or across batch sizes and precisions (CUDA), and against the released code's naive GAT.

Model: ``mcer-reference`` (IEMOCAP preset: text 1024, audio 1582, video 342, 6 classes,
2 speakers, H 512, 64 heads; 45,632,150 parameters), on random dialogues of N utterances.
A training step is forward + loss + backward + Adam step; inference is a forward pass under
``torch.inference_mode``. Every variant runs in its own subprocess.

CPU (default, ``--threads`` 2): variants ``mcer-reference``, ``naive`` (the same model with the
released ``[B, N, N, 2F+10]`` GAT score), ``gat`` / ``gat-naive`` (the text graph stage alone,
forward + backward). For the full-model variants it prints the floors a step cannot beat:

- FLOP floor: the step's dense FLOPs (matrix products, forward + backward, counted by
  ``torch.utils.flop_counter`` with the attention maps kept, i.e. without recomputation) divided
  by this machine's fp32 matmul rate, measured with a ``[1760 x 2048] @ [2048 x 2048]`` product
  timed right before and after every timed step. ``x FLOP`` is the median over repeats of
  step time / floor, so both sides see the same load on a shared machine; ``x FLOPc`` is the
  same ratio in CPU seconds of all threads (a step or product delayed by other processes does
  not count the time it waited).
- state floor: the resident memory (RSS) of the process holding the model, its gradients and
  Adam's two moments (16 bytes per parameter, plus the interpreter and libraries), measured
  before the first step. ``x state`` = peak RSS / state floor.

A CPU variant may carry ``+flag`` suffixes, each a separate row of the same run: ``+malloc``
(glibc returns freed blocks to the OS: ``harness.runtime.configure_cpu_allocator``),
``+recompute`` (the model's ``recompute=True``), ``+fused-adam`` (``Adam(fused=True)``),
``+keep-maps`` (the attention cores keep their maps for the backward pass, as on a GPU).

CUDA (``--device cuda``): variants ``mcer-reference``, ``mcer`` (the default model at the same
sizes) and ``naive``, each at ``--batches`` (16,64) and ``--dtypes`` (fp32,bf16 autocast):
train-step and inference medians (synchronised), peak ``torch.cuda.max_memory_allocated``, the
ratio naive / variant, and bf16 / fp32 of each variant.

    python benchmarks/bench_mcer.py [--out DIR] [--repeats 3] [--batch 16] [--length 110]
    python benchmarks/bench_mcer.py --device cuda [--batches 16,64] [--dtypes fp32,bf16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU_VARIANTS = ("mcer-reference", "naive", "gat", "gat-naive")
CUDA_VARIANTS = ("mcer-reference", "mcer", "naive")
FLAGS = ("malloc", "recompute", "fused-adam", "keep-maps")  # "+flag" suffixes of a variant, see the module doc
CPU_DEFAULT = ("mcer-reference", "mcer-reference+malloc", "mcer-reference+malloc+recompute", "naive", "gat",
               "gat-naive")
PAIRS = (("mcer-reference", "naive"), ("gat", "gat-naive"))
DIMS = {"text": 1024, "audio": 1582, "video": 342}
GEMM = (1760, 2048, 2048)  # the fusion MLP's hidden product at B=16, N=110


def _rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _build(variant: str, batch: int, length: int, device: str, fused_adam: bool = False, recompute: bool = False):
    """(model, batch data, Adam) for ``variant`` on ``device``; seeded, so every variant is the same model.

    Adam is the harness's (``harness.train.make_optimizer``) unless ``fused_adam``."""
    sys.path[:0] = [str(HERE.parent), str(HERE)]
    import torch

    from harness import MODELS
    from harness.data.collate import DialogueBatch
    from harness.data.types import DataSpec
    from mcer.model import PRESETS

    if variant.endswith("naive"):
        import _naive_gat

        _naive_gat.install()
    torch.manual_seed(0)
    spec = DataSpec(dims=dict(DIMS), num_classes=6, num_speakers=2)
    extra = {"recompute": True} if recompute else {}
    if variant == "mcer":
        model = MODELS.create("mcer", spec, **PRESETS["iemocap"].options, **extra)
    else:
        model = MODELS.create("mcer-reference", spec, preset="iemocap", **extra)
    model = model.to(device)
    g = torch.Generator().manual_seed(1)
    inputs = {m: torch.randn(batch, length, d, generator=g) for m, d in spec.dims.items()}
    data = DialogueBatch(inputs, torch.ones(batch, length, dtype=torch.bool), torch.randint(0, 2, (batch, length), generator=g),
                         torch.randint(0, 6, (batch, length), generator=g), None, [[""] * length] * batch).to(device)
    if fused_adam:
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-5, fused=True)
    else:  # the optimiser the harness trains with
        from harness.train import TrainConfig, make_optimizer

        opt = make_optimizer(model.parameters(), TrainConfig(optimizer="adam", lr=1e-4, weight_decay=5e-5))
    return model, data, opt


def _matmul_rates(torch, a, b, n: int = 3) -> tuple[float, float]:
    """FLOP/s of ``a @ b`` (fp32) on this machine now, per wall second and per CPU second
    (all threads), each the best of ``n`` products."""
    wall = cpu = float("inf")
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
    return flops / wall, flops / max(cpu, 1e-9)


def _maps_kept(enabled: bool):
    """Within the block the attention cores keep their maps (``+keep-maps``); else a no-op."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from mcer.attention import recomputation

    return recomputation(False)


def _step_flops(torch, model, data) -> float:
    """Dense FLOPs of forward + loss + backward without any recomputation (maps kept, stages not
    recomputed): the products the step itself needs."""
    import contextlib

    from torch.utils.flop_counter import FlopCounterMode

    try:
        from mcer.attention import recomputation
    except ImportError:  # an older tree without the recomputing core (A/B runs)
        recomputation = lambda enabled: contextlib.nullcontext()  # noqa: E731

    model.train()
    recompute = getattr(model, "recompute", False)
    if recompute:
        model.recompute = False  # the floor counts the step's own products, not the recomputation
    with recomputation(False), FlopCounterMode(display=False) as counter:
        model.loss(model(data), data).backward()
    model.zero_grad(set_to_none=True)
    if recompute:
        model.recompute = True
    return float(counter.get_total_flops())


def cpu_worker(variant: str, repeats: int, batch: int, length: int, threads: int, fused_adam: bool = False) -> dict:
    import torch

    torch.set_num_threads(threads)
    base, *flags = variant.split("+")
    if "malloc" in flags:
        from harness.runtime import configure_cpu_allocator

        configure_cpu_allocator()
    fused_adam = fused_adam or "fused-adam" in flags
    model, data, opt = _build(base, batch, length, "cpu", fused_adam, recompute="recompute" in flags)
    if base.startswith("gat"):
        return _gat_only(torch, model, variant, repeats, batch, length, threads)

    keep_maps = "keep-maps" in flags

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with _maps_kept(keep_maps):
            loss = model.loss(model(data), data)
        loss.backward()
        opt.step()

    model.train()
    # the state floor: parameters, gradients and Adam's moments all allocated, nothing else
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    floor_mib = _rss_mib()
    opt.zero_grad(set_to_none=True)
    step()  # warm-up
    a, b = torch.randn(GEMM[0], GEMM[1]), torch.randn(GEMM[1], GEMM[2])
    torch.mm(a, b)
    train, cpu, rates, cpu_rates = [], [], [], []
    for _ in range(repeats):
        before = _matmul_rates(torch, a, b)
        t, c = time.perf_counter(), time.process_time()
        step()
        train.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        after = _matmul_rates(torch, a, b)
        rates.append((before[0] + after[0]) / 2)
        cpu_rates.append((before[1] + after[1]) / 2)
    del a, b
    model.eval()
    infer = []
    with torch.inference_mode():
        model(data)
        for _ in range(repeats):
            t = time.perf_counter()
            model(data)
            infer.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    flops = _step_flops(torch, model, data)  # after the peak was read: it adds no new high-water mark
    ratios = [t * r / flops for t, r in zip(train, rates)]
    cpu_ratios = [t * r / flops for t, r in zip(cpu, cpu_rates)]
    params = model.num_parameters()
    return {"variant": variant, "params": params, "train_step_s": statistics.median(train),
            "inference_s": statistics.median(infer), "peak_rss_mb": peak, "state_floor_mb": floor_mib,
            "state_bytes_mb": 16 * params / 2**20, "x_state_floor": peak / floor_mib, "step_gflop": flops / 1e9,
            "matmul_gflops": statistics.median(rates) / 1e9, "flop_floor_s": flops / statistics.median(rates),
            "x_flop_floor": statistics.median(ratios), "x_flop_floor_cpu_time": statistics.median(cpu_ratios),
            "train_step_cpu_s": statistics.median(cpu), "batch": batch, "length": length, "threads": threads,
            "repeats": repeats, "fused_adam": fused_adam}


def _gat_only(torch, model, variant: str, repeats: int, batch: int, length: int, threads: int) -> dict:
    """The text graph stage alone (2 RGAT blocks, 6 GAT layers): forward + backward, no optimiser."""
    graphs = model.graphs.train()
    x = torch.randn(batch, length, 512, requires_grad=True)
    speakers = torch.randint(0, 2, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.bool)
    base = _rss_mib()

    def step() -> None:
        graphs.zero_grad(set_to_none=True)
        graphs(x, speakers, mask).sum().backward()

    step()
    train = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        train.append(time.perf_counter() - t)
    infer = []
    graphs.eval()
    with torch.inference_mode():
        for _ in range(repeats):
            t = time.perf_counter()
            graphs(x, speakers, mask)
            infer.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "params": sum(p.numel() for p in graphs.parameters()),
            "train_step_s": statistics.median(train), "inference_s": statistics.median(infer), "peak_rss_mb": peak,
            "peak_increase_mb": peak - base, "batch": batch, "length": length, "threads": threads, "repeats": repeats}


def cuda_worker(variant: str, repeats: int, batches: list[int], dtypes: list[str], length: int,
                fused_adam: bool = False) -> list[dict]:
    import torch

    rows = []
    for batch in batches:
        for dtype in dtypes:
            rows.append(_cuda_config(variant, repeats, batch, dtype, length, fused_adam))
            torch.cuda.empty_cache()  # the configuration's model and optimiser are gone: start the next one clean
    return rows


def _cuda_config(variant: str, repeats: int, batch: int, dtype: str, length: int, fused_adam: bool) -> dict:
    """One (batch, precision) configuration on CUDA, 2 warm-ups then ``repeats`` synchronised timings."""
    import torch

    model, data, opt = _build(variant, batch, length, "cuda", fused_adam)
    amp = dtype == "bf16"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = model.loss(model(data), data)
        loss.backward()
        opt.step()

    def infer_once() -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            model(data)

    def timed(fn) -> float:
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t

    model.train()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        step()
    train = [timed(step) for _ in range(repeats)]
    train_peak = torch.cuda.max_memory_allocated()
    model.eval()
    for _ in range(2):
        infer_once()
    infer = [timed(infer_once) for _ in range(repeats)]
    row = {"variant": variant, "batch": batch, "dtype": dtype, "length": length,
           "train_step_ms": 1e3 * statistics.median(train), "inference_ms": 1e3 * statistics.median(infer),
           "peak_cuda_mib": train_peak / 2**20, "repeats": repeats, "gpu": torch.cuda.get_device_name(),
           "torch": torch.__version__, "fused_adam": fused_adam}
    return row


def _run_worker(args: argparse.Namespace, variant: str) -> list[dict]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, "--device", args.device,
           "--repeats", str(args.repeats), "--batch", str(args.batch), "--length", str(args.length),
           "--threads", str(args.threads), "--batches", args.batches, "--dtypes", args.dtypes]
    if args.fused_adam:
        cmd.append("--fused-adam")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"variant {variant!r} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"  {variant}: done", file=sys.stderr)
    return out if isinstance(out, list) else [out]


def _write_csv(rows: list[dict], path: Path) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def report_cpu(rows: list[dict], args: argparse.Namespace) -> None:
    by = {r["variant"]: r for r in rows}
    for fast, slow in PAIRS:
        if slow not in by:
            continue
        for r in [by[slow]] + [r for r in rows if r["variant"].split("+")[0] == fast]:
            r["train_x_vs_naive"] = by[slow]["train_step_s"] / r["train_step_s"]
            r["inference_x_vs_naive"] = by[slow]["inference_s"] / r["inference_s"]
            r["peak_rss_x_vs_naive"] = by[slow]["peak_rss_mb"] / r["peak_rss_mb"]
    nan = float("nan")
    adam = "Adam(fused=True)" if args.fused_adam else "the harness's Adam"
    print(f"mcer-reference IEMOCAP, B={args.batch} N={args.length}, {args.threads} threads, median of {args.repeats}, "
          f"{adam}")
    print("goals: step <= 1.5x its FLOP floor; peak RSS <= 2x the state floor (see the script's doc); "
          "x FLOPc: the same ratio in CPU seconds (all threads), less sensitive to other load")
    print(f"{'variant':<32} {'train s':>8} {'infer s':>8} {'peak MiB':>9} {'x naive':>8} | {'GFLOP':>6} "
          f"{'GFLOP/s':>8} {'floor s':>8} {'x FLOP':>7} {'x FLOPc':>7} | {'state MiB':>9} {'x state':>8}")
    for r in rows:
        print(f"{r['variant']:<32} {r['train_step_s']:8.2f} {r['inference_s']:8.2f} {r['peak_rss_mb']:9.0f} "
              f"{r.get('train_x_vs_naive', nan):8.2f} | {r.get('step_gflop', nan):6.0f} {r.get('matmul_gflops', nan):8.0f} "
              f"{r.get('flop_floor_s', nan):8.2f} {r.get('x_flop_floor', nan):7.2f} "
              f"{r.get('x_flop_floor_cpu_time', nan):7.2f} | {r.get('state_floor_mb', nan):9.0f} "
              f"{r.get('x_state_floor', nan):8.2f}")
    if "mcer-reference" in by:
        r = by["mcer-reference"]
        print(f"state floor = RSS with parameters, gradients and Adam state ({r['state_bytes_mb']:.0f} MiB of tensors "
              f"at 16 B/parameter) plus interpreter and libraries")


def report_cuda(rows: list[dict]) -> None:
    key = {(r["variant"], r["batch"], r["dtype"]): r for r in rows}
    for r in rows:
        naive = key.get(("naive", r["batch"], r["dtype"]))
        fp32 = key.get((r["variant"], r["batch"], "fp32"))
        if naive:
            r["train_x_vs_naive"] = naive["train_step_ms"] / r["train_step_ms"]
            r["inference_x_vs_naive"] = naive["inference_ms"] / r["inference_ms"]
            r["memory_x_vs_naive"] = naive["peak_cuda_mib"] / r["peak_cuda_mib"]
        if fp32 and r["dtype"] != "fp32":
            r["train_vs_fp32"] = r["train_step_ms"] / fp32["train_step_ms"]
            r["inference_vs_fp32"] = r["inference_ms"] / fp32["inference_ms"]
    nan = float("nan")
    print(f"CUDA ({rows[0]['gpu']}, torch {rows[0]['torch']}), N={rows[0]['length']}, median of {rows[0]['repeats']} "
          "after 2 warm-ups; x naive = naive / row; vs fp32 = row / fp32 (< 1: faster than fp32)")
    print(f"{'variant':<15} {'B':>3} {'dtype':>5} {'train ms':>9} {'infer ms':>9} {'peak MiB':>9} {'x naive':>8} "
          f"{'infer x naive':>13} {'mem x naive':>11} {'train vs fp32':>13} {'infer vs fp32':>13}")
    for r in rows:
        print(f"{r['variant']:<15} {r['batch']:3d} {r['dtype']:>5} {r['train_step_ms']:9.1f} {r['inference_ms']:9.1f} "
              f"{r['peak_cuda_mib']:9.0f} {r.get('train_x_vs_naive', nan):8.2f} {r.get('inference_x_vs_naive', nan):13.2f} "
              f"{r.get('memory_x_vs_naive', nan):11.2f} {r.get('train_vs_fp32', nan):13.2f} "
              f"{r.get('inference_vs_fp32', nan):13.2f}")


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"{name} must be a comma list of positive ints, got {text!r}") from None
    if not values or min(values) < 1:
        raise SystemExit(f"{name} must be a comma list of positive ints, got {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-results", help="directory for mcer.csv / mcer_cuda.csv")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="CPU batch (dialogues)")
    parser.add_argument("--batches", default="16,64", help="CUDA batches, comma list")
    parser.add_argument("--dtypes", default="fp32,bf16", help="CUDA precisions: fp32 and/or bf16 (autocast)")
    parser.add_argument("--length", type=int, default=110)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--variants", default=None, help=f"comma list; CPU {CPU_VARIANTS}, CUDA {CUDA_VARIANTS}")
    parser.add_argument("--fused-adam", action="store_true",
                        help="Adam(fused=True) instead of the harness's optimiser (what that change would buy)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args()  # nox passes the same posargs to every bench script
    if args.repeats < 1 or args.batch < 1 or args.length < 1 or args.threads < 1:
        raise SystemExit(f"--repeats, --batch, --length and --threads must be >= 1, got {args.repeats}, {args.batch}, "
                         f"{args.length}, {args.threads}")
    batches = _int_list(args.batches, "--batches")
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not dtypes or set(dtypes) - {"fp32", "bf16"}:
        raise SystemExit(f"--dtypes must be a comma list of fp32 and bf16, got {args.dtypes!r}")
    if args.worker:
        if args.device == "cuda":
            print(json.dumps(cuda_worker(args.worker, args.repeats, batches, dtypes, args.length, args.fused_adam)))
        else:
            print(json.dumps(cpu_worker(args.worker, args.repeats, args.batch, args.length, args.threads,
                                        args.fused_adam)))
        return
    allowed = CUDA_VARIANTS if args.device == "cuda" else CPU_VARIANTS
    default = CUDA_VARIANTS if args.device == "cuda" else CPU_DEFAULT
    chosen = [v.strip() for v in (args.variants or ",".join(default)).split(",") if v.strip()]
    bad = [v for v in chosen if v.split("+")[0] not in allowed or (args.device == "cuda" and "+" in v)
           or any(f not in FLAGS for f in v.split("+")[1:])]
    if bad:
        raise SystemExit(f"--variants: unknown {bad} for --device {args.device}; expected a comma list of {allowed}"
                         + (f", each with optional +flags from {FLAGS}" if args.device == "cpu" else ""))
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: CUDA is not available on this machine")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for variant in chosen for row in _run_worker(args, variant)]
    if args.device == "cuda":
        report_cuda(rows)
        path = out / "mcer_cuda.csv"
    else:
        report_cpu(rows, args)
        path = out / "mcer.csv"
    _write_csv(rows, path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
