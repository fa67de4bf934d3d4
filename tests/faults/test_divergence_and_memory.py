"""Item 2, divergence, and item 6, resource limits, through whole sweeps.

A model whose loss turns NaN, a corruption that poisons the test set with NaN, and a model
that runs out of memory above a batch size: each cell that fails is stored as ``failed``
with its reason, the others are unaffected, the sweep completes, and the report lists every
failed cell. Out of memory, the batch size is halved until it fits (and the size used is
recorded), or the cell fails cleanly at batch size 1.
"""

from __future__ import annotations

import json

import pytest
import torch

from harness.corruption import Corruption, SeverityTable
from harness.data.types import DataSpec
from harness.models import BenchModel, head, masked_mean
from harness.registry import CORRUPTIONS, MODELS
from harness.train import OutOfMemoryError, TrainConfig, fit, is_out_of_memory, with_batch_backoff

from ._helpers import assert_store_sound, connect, registered, sweep_data, sweep_in_process

pytestmark = pytest.mark.faults


class NanAfterSteps(BenchModel):
    """Mean text frame -> linear head; from training step ``k`` on, its output is NaN."""

    def __init__(self, spec: DataSpec, k: int = 3) -> None:
        super().__init__(spec)
        self.k, self.steps = k, 0
        self.head = head(spec.dims["text"], spec)

    def forward(self, batch):  # noqa: ANN001, ANN201
        out = self.head(masked_mean(batch.inputs["text"], batch.lengths["text"]))
        if self.training:
            self.steps += 1
            if self.steps >= self.k:
                out = out * float("nan")
        return out


class AllocatesPerItem(BenchModel):
    """Raises an allocator failure, as torch does on the CPU, when a batch exceeds ``max_batch``."""

    def __init__(self, spec: DataSpec, max_batch: int = 2, error: str = "runtime") -> None:
        super().__init__(spec)
        self.max_batch, self.error = max_batch, error
        self.head = head(spec.dims["text"], spec)
        self.sizes: list[int] = []

    def forward(self, batch):  # noqa: ANN001, ANN201
        self.sizes.append(batch.size)
        if batch.size > self.max_batch:
            if self.error == "memory":
                raise MemoryError()
            raise RuntimeError(f"[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                               f"you tried to allocate {batch.size * 10**12} bytes. Error code 12")
        return self.head(masked_mean(batch.inputs["text"], batch.lengths["text"]))


class PoisonAudio(Corruption):
    """Test corruption: from severity 4 on, the first utterance's audio features become NaN."""

    name = "faults-poison"
    table = SeverityTable("poisoned fraction", "", (0.0, 0.1, 0.2, 0.3, 0.4, 0.5))

    def __init__(self, value: float = float("nan")) -> None:
        super().__init__("audio")
        self.value = value

    def __call__(self, dialogues, severity, seed):  # noqa: ANN001, ANN204
        if severity < 4:
            return dialogues
        d0 = dialogues[0]
        u0 = d0.utterances[0]
        bad = u0.with_features({"audio": torch.full_like(u0.features["audio"], self.value)})
        return [type(d0)(d0.dialogue_id, [bad, *d0.utterances[1:]]), *dialogues[1:]]


def _rows(db):
    with connect(db) as con:
        return con.execute("SELECT variant, corruption, severity, status, error FROM results").fetchall()


def test_divergence_and_poisoned_inputs_fail_their_cells_and_the_report_lists_them(tmp_path):
    from reports.build import build_report

    data = sweep_data(seeds=(0,), models=[{"name": "faults-nan", "options": {"k": 3}},
                                          {"name": "text-only", "options": {"hidden": 8}}],
                      corruptions=[{"name": "faults-poison", "severities": [2, 4]}])
    out = tmp_path / "run"
    with registered(MODELS, "faults-nan", NanAfterSteps, level="utterance"), \
            registered(CORRUPTIONS, "faults-poison", PoisonAudio):
        summary = sweep_in_process(data, out)
        build_report(out)
    db = out / "results.sqlite"
    assert_store_sound(db, 6)
    rows = _rows(db)
    assert summary.failed == 4
    nan_rows = [r for r in rows if r[0] == "faults-nan"]
    assert [r[3] for r in nan_rows] == ["failed"] * 3
    assert all(r[4].startswith("DivergenceError: loss became nan at epoch 1, step 2") for r in nan_rows)
    ok_rows = {(r[1], r[2]): r for r in rows if r[0] == "text-only"}
    assert ok_rows[("clean", 0)][3] == ok_rows[("faults-poison", 2)][3] == "ok"
    poisoned = ok_rows[("faults-poison", 4)]
    assert poisoned[3] == "failed" and "InputError" in poisoned[4] and "modality 'audio'" in poisoned[4]
    assert "NaN" in poisoned[4]
    with connect(db) as con:
        trainings = dict(con.execute("SELECT variant, status FROM trainings").fetchall())
    assert trainings == {"faults-nan": "failed", "text-only": "ok"}
    report = (out / "report.md").read_text()
    assert "Rows: 6 (4 failed)" in report and "## Failed cells" in report
    section = report.split("## Failed cells", 1)[1].split("\n\n", 2)[1]
    listed = [line for line in section.splitlines() if line.startswith("| ") and "failed" not in line
              and ("DivergenceError" in line or "InputError" in line)]
    assert len(listed) == 4  # every failed cell, none dropped
    csv = (out / "results.csv").read_text()
    assert csv.count(",failed,") == 4


class FixedNanAfterSteps(NanAfterSteps):
    """The same model after its bug is fixed: never NaN (what ``--retry-failed`` is for)."""

    def forward(self, batch):  # noqa: ANN001, ANN201
        return self.head(masked_mean(batch.inputs["text"], batch.lengths["text"]))


def _stored(db):
    with connect(db) as con:
        return {(r[0], r[1], r[2]): (r[3], r[4], r[5])
                for r in con.execute("SELECT variant, corruption, severity, status, error, created_at FROM results")}


def test_retry_failed_reruns_only_failed_cells_and_keeps_one_row_per_cell(tmp_path):
    from harness.run.config import parse_config
    from harness.run.driver import run_sweep

    data = sweep_data(seeds=(0,), models=[{"name": "faults-nan", "options": {"k": 3}},
                                          {"name": "text-only", "options": {"hidden": 8}}],
                      corruptions=[{"name": "faults-poison", "severities": [2, 4]}])
    out, db = tmp_path / "run", tmp_path / "run" / "results.sqlite"
    with registered(CORRUPTIONS, "faults-poison", PoisonAudio):
        with registered(MODELS, "faults-nan", NanAfterSteps, level="utterance"):
            assert sweep_in_process(data, out).failed == 4
        before = _stored(db)
        with connect(db) as con:
            ckpt = out / con.execute("SELECT checkpoint FROM trainings WHERE variant = 'text-only'").fetchone()[0]
        ckpt_mtime = ckpt.stat().st_mtime_ns
        with registered(MODELS, "faults-nan", FixedNanAfterSteps, level="utterance"):
            plain = sweep_in_process(data, out)  # a resume keeps failed cells: they are results
            assert (plain.cells_written, plain.failed) == (0, 0)
            messages: list[str] = []
            retried = run_sweep(parse_config(data), out, raw_config=data, progress=False, log=messages.append,
                                retry_failed=True)
    assert "retrying 4 failed cell(s)" in messages
    assert retried.cells_written == 4
    assert_store_sound(db, 6)
    after = _stored(db)
    # The fixed model trains now; its poisoned test set still fails, as text-only's does.
    assert {k: v[0] for k, v in after.items() if k[0] == "faults-nan"} == {
        ("faults-nan", "clean", 0): "ok", ("faults-nan", "faults-poison", 2): "ok",
        ("faults-nan", "faults-poison", 4): "failed"}
    assert retried.failed == 2
    assert after[("text-only", "faults-poison", 4)][:1] == ("failed",)
    assert "InputError" in after[("text-only", "faults-poison", 4)][1]
    for key in [("text-only", "clean", 0), ("text-only", "faults-poison", 2)]:
        assert after[key] == before[key]  # ok rows are never touched
    assert ckpt.stat().st_mtime_ns == ckpt_mtime  # text-only was re-evaluated from its checkpoint, not retrained
    with connect(db) as con:
        assert dict(con.execute("SELECT variant, status FROM trainings").fetchall()) == {"faults-nan": "ok",
                                                                                          "text-only": "ok"}


@pytest.mark.parametrize("error", ["runtime", "memory"])
def test_out_of_memory_backs_off_to_a_batch_that_fits(tmp_path, error):
    data = sweep_data(seeds=(0,), models=[{"name": "faults-oom", "options": {"max_batch": 2, "error": error}},
                                          {"name": "faults-oom", "label": "never-fits",
                                           "options": {"max_batch": 0, "error": error}}],
                      corruptions=[])
    data["train"]["batch_size"] = 8
    out = tmp_path / "run"
    with registered(MODELS, "faults-oom", AllocatesPerItem, level="utterance"):
        sweep_in_process(data, out)
    db = out / "results.sqlite"
    assert_store_sound(db, 2)
    with connect(db) as con:
        fits = {v: (s, e, json.loads(f)) for v, s, e, f in con.execute("SELECT variant, status, error, fit FROM trainings")}
        results = dict(con.execute("SELECT variant, status FROM results").fetchall())
    status, err, fit_info = fits["faults-oom"]
    assert status == "ok" and fit_info["batch_size"] == 2 and len(fit_info["oom_backoffs"]) == 2
    assert fit_info["oom_backoffs"][0].startswith("batch size 8: ")
    assert results["faults-oom"] == "ok"
    status, err, _ = fits["never-fits"]
    assert status == "failed" and results["never-fits"] == "failed"
    assert err.startswith("OutOfMemoryError: training AllocatesPerItem on 'synthetic': out of memory even at batch size 1")


def test_backoff_restarts_from_the_same_state_so_numbers_match_a_run_at_that_size():
    from harness import DATASETS

    tiny_dataset = DATASETS.create("synthetic", n_train=3, n_valid=2, n_test=1, min_utts=2, max_utts=4,
                                   keep_raw=False)
    spec = tiny_dataset.spec
    cfg = TrainConfig(epochs=2, batch_size=8, patience=5)
    torch.manual_seed(0)
    backed_off = AllocatesPerItem(spec, max_batch=2)
    result = fit(backed_off, tiny_dataset, cfg, seed=0, device="cpu")
    assert result.batch_size == 2 and backed_off.sizes[:2] == [8, 4]
    torch.manual_seed(0)
    direct = AllocatesPerItem(spec, max_batch=2)
    direct_result = fit(direct, tiny_dataset, TrainConfig(epochs=2, batch_size=2, patience=5), seed=0, device="cpu")
    assert result.history == direct_result.history
    for a, b in zip(backed_off.state_dict().values(), direct.state_dict().values()):
        assert torch.equal(a, b)


def test_backoff_classifies_errors():
    cuda_oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    assert is_out_of_memory(cuda_oom("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    seen = []

    def run(bs):
        seen.append(bs)
        raise cuda_oom("CUDA out of memory")

    with pytest.raises(OutOfMemoryError, match="out of memory even at batch size 1"):
        with_batch_backoff(run, 5, "probe")
    assert seen == [5, 2, 1]
    with pytest.raises(ValueError, match="not memory"):
        with_batch_backoff(lambda bs: (_ for _ in ()).throw(ValueError("not memory")), 4, "probe")


