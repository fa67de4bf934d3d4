"""Does a portable arithmetic mode make CPU training bit-identical across instruction sets?

Trains a few small models (MCER, MulT, DialogueRNN: attention, convolutions, recurrences) on the
synthetic dataset, each in a fresh process under one arithmetic setting, and prints a digest of
the trained weights and of the test predictions per setting. Settings that print the same
digests computed bit for bit the same thing.

What varies between settings is what varies between processors:

* PyTorch's own kernels: ``ATEN_CPU_CAPABILITY`` = ``avx512``, ``avx2`` or ``default``;
* MKL's BLAS: ``MKL_ENABLE_INSTRUCTIONS`` (what MKL may use on this CPU) against ``MKL_CBWR``
  (conditional numerical reproducibility: one code path whatever the CPU);
* oneDNN's kernels (convolutions): ``ONEDNN_MAX_CPU_ISA``;
* glibc's maths library (exp, log, pow): its AVX-512 variants, switched off with
  ``GLIBC_TUNABLES``;
* threads.

The portable mode (``harness.runtime.PORTABLE_ENVIRONMENT``) fixes all of them at their AVX2
level; it holds if every portable setting, whatever CPU it pretends to run on, gives one
digest. The "portable but ..." settings leave one part out, to show what each is for. Usage:
``python benchmarks/portable_arithmetic.py [--out bench-results]`` (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.runtime import PORTABLE_ENVIRONMENT

NO_AVX512 = "glibc.cpu.hwcaps=-AVX512F_Usable,-AVX512DQ_Usable"

NATIVE: dict[str, str] = {}
SETTINGS: dict[str, dict[str, str]] = {
    "native (this CPU's kernels)": NATIVE,
    "ATen avx2 only": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATen default only": {"ATEN_CPU_CAPABILITY": "default"},
    "portable": dict(PORTABLE_ENVIRONMENT),
    # the same mode as it would run on a CPU with AVX2 but without AVX-512: MKL and glibc told so
    "portable, MKL limited to AVX2": {**PORTABLE_ENVIRONMENT, "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "portable, glibc without AVX-512": {**PORTABLE_ENVIRONMENT, "GLIBC_TUNABLES": NO_AVX512},
    "portable, both": {**PORTABLE_ENVIRONMENT, "MKL_ENABLE_INSTRUCTIONS": "AVX2", "GLIBC_TUNABLES": NO_AVX512},
    # what each fixed part of the mode is for: leave one out and the result moves
    "portable but MKL's own path": {k: v for k, v in PORTABLE_ENVIRONMENT.items() if k != "MKL_CBWR"},
    "portable but oneDNN's own ISA": {k: v for k, v in PORTABLE_ENVIRONMENT.items() if k != "ONEDNN_MAX_CPU_ISA"},
    "portable but 2 threads": {**PORTABLE_ENVIRONMENT, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
}
EMULATED = ("portable", "portable, MKL limited to AVX2", "portable, glibc without AVX-512", "portable, both")

_TRAIN = r"""
import hashlib, json, sys, time, torch
from harness import DATASETS, MODELS
from harness.train import TrainConfig, fit, predict
from harness.runtime import seed_everything
ds = DATASETS.create("synthetic", n_train=12, n_valid=6, n_test=8, keep_raw=False, seed=0)
out = {"capability": torch.backends.cpu.get_cpu_capability()}
for name, opts in (("mcer", {"hidden": 32, "heads": 4}), ("mult", {"d": 16, "layers": 1}),
                   ("dialoguernn", {"hidden": 16})):
    seed_everything(0)
    model = MODELS.create(name, ds.spec, **opts)
    t0 = time.process_time()
    fit(model, ds, TrainConfig(epochs=3, patience=3, lr=3e-3, dialogue_batch_size=4, batch_size=16), seed=0,
        device="cpu")
    preds = predict(model, ds.splits["test"], ds.spec, "cpu")
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode()); h.update(v.detach().cpu().contiguous().numpy().tobytes())
    out[name] = {"weights": h.hexdigest()[:16],
                 "predictions": hashlib.sha256(preds.outputs.tobytes()).hexdigest()[:16],
                 "cpu_s": round(time.process_time() - t0, 2)}
print(json.dumps(out))
"""


def run_setting(env_changes: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA",
                        "GLIBC_TUNABLES")}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env_changes})
    done = subprocess.run([sys.executable, "-c", _TRAIN], env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"setting {env_changes}: training failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    rows = []
    for label, env in SETTINGS.items():
        t0 = time.perf_counter()
        r = run_setting(env)
        rows.append({"setting": label, "capability": r.pop("capability"), **{
            f"{m}_{k}": v for m, d in r.items() for k, v in d.items()}, "wall_s": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    import pandas as pd

    df = pd.DataFrame(rows)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    df.to_csv(Path(args.out) / "portable_arithmetic.csv", index=False)
    digest_cols = [c for c in df.columns if c.endswith(("_weights", "_predictions"))]
    df["digest"] = df[digest_cols].astype(str).agg("|".join, axis=1)
    groups = df.groupby("digest", sort=False)["setting"].apply(list)
    print(f"\n{len(groups)} distinct results over {len(df)} settings:")
    for i, settings in enumerate(groups, 1):
        print(f"  {i}: {'; '.join(settings)}")
    portable = df[df["setting"].isin(EMULATED)]
    holds = portable["digest"].nunique() == 1
    cpu = {m: (df.loc[df.setting == "portable", f"{m}_cpu_s"].iloc[0] /
               df.loc[df.setting.str.startswith("native"), f"{m}_cpu_s"].iloc[0]) for m in ("mcer", "mult", "dialoguernn")}
    print(f"portable mode bit-identical across its emulated instruction sets: {'yes' if holds else 'NO'}")
    print("training CPU time, portable / native: " + ", ".join(f"{m} {v:.2f}x" for m, v in cpu.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
