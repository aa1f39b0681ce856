"""The benchmark pieces on tiny budgets: they run, and results.json has the promised schema.

No timing is asserted (the machine's load decides timings); only shapes, names, finiteness
and the logic that turns numbers into verdicts and flags.
"""
import json
import math
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:                      # `benchmarks` is a folder of the repo, not installed
    sys.path.insert(0, str(REPO))

from benchmarks import nfe, quality, report, run  # noqa: E402
from benchmarks.contenders import ChapterLoop, fresh_model  # noqa: E402
from benchmarks.speed import training_speed  # noqa: E402
from gen_models_utilities import create_ring_gaussians  # noqa: E402

TINY = run.Budget(name="quick", judge_samples=200, speed_chunk=3, speed_rounds=1, cap_s=0.5, ladder=(5,),
                  check_every={"torchcfm": 3, "flow_matching": 1}, step_ladder=(1, 2),
                  tolerance_ladder=(3e-1,), reflow_steps=3, reflow_pairs=100, widget_repeats=1, notebooks=False)


@pytest.fixture(scope="module")
def tiny_results():
    torch.set_num_threads(1)
    return run.run_all(TINY, log=lambda *_: None)


def test_training_speed_reports_both_loops():
    speeds = training_speed(chunk_steps=2, rounds=1)
    assert set(speeds) == {"train_steps_per_s_chapter_loop", "train_steps_per_s_package"}
    assert all(math.isfinite(v) and v > 0 for v in speeds.values())


def test_chapter_loop_takes_one_step_per_batch_and_learns():
    data = create_ring_gaussians(250, seed=0)[0]
    model = fresh_model(0)
    before = [p.detach().clone() for p in model.parameters()]
    steps, seconds = ChapterLoop(model, data, batch_size=100).run(2)
    assert steps == 2 * 3                            # 250 points in batches of 100: 3 batches an epoch
    assert seconds > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_fresh_models_share_initial_weights_and_leave_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = fresh_model(3), fresh_model(3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_judge_passes_real_data_and_fails_noise(monkeypatch):
    judge = quality.QualityJudge(n_samples=400, seed=5)
    assert 0 < judge.floor < judge.w2_target
    fresh = torch.from_numpy(create_ring_gaussians(400, seed=99)[0])
    monkeypatch.setattr(judge, "samples", lambda model, *a, **k: (fresh, 7))
    verdict = judge.judge(None)
    assert verdict.passed and verdict.nfe == 7 and verdict.off_mode <= quality.MAX_OFF_MODE
    monkeypatch.setattr(judge, "samples", lambda model, *a, **k: (3 * torch.randn(400, 2), 7))
    verdict = judge.judge(None)
    assert not verdict.passed and math.isnan(verdict.w2)          # the off-mode gate skipped W2
    assert not judge.judge(None, check_modes=False).passed         # and W2 alone fails it too


@pytest.mark.parametrize("seed", range(4))
def test_sliced_bound_never_exceeds_exact_w2(seed):
    from gen_models_utilities import wasserstein2

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(300, 2, generator=g) * (1 + seed)
    y = torch.from_numpy(create_ring_gaussians(300, seed=seed)[0])
    bound = quality.sliced_w2_lower_bound(x, y)
    assert 0 < bound <= wasserstein2(x, y) + 1e-9
    assert quality.sliced_w2_lower_bound(y, y) == 0


@pytest.mark.parametrize("first_good", [0, 3, 6, 7, None])
def test_bisection_finds_the_first_passing_setting(first_good):
    settings = [{"n_steps": n} for n in range(1, 9)]
    calls = []

    class FakeJudge:
        def judge(self, model, check_modes=True, n_steps=1):
            calls.append(n_steps)
            ok = first_good is not None and n_steps - 1 >= first_good
            return quality.Verdict(w2=1.0, off_mode=0.0, nfe=n_steps, passed=ok)

    found, last, n_evaluations = nfe.first_passing(FakeJudge(), None, settings)
    assert last.nfe == 8
    if first_good is None:
        assert found is None and n_evaluations == 1
    else:
        assert found.nfe == first_good + 1
        assert n_evaluations <= 1 + math.ceil(math.log2(len(settings) + 1))
    assert len(calls) == len(set(calls))             # no setting evaluated twice


def test_target_flags():
    results = {"train_speedup_vs_chapter_loop": 2.5, "time_to_quality_s_package": 10.0,
               "time_to_quality_package_reached": 1, "time_to_quality_s_torchcfm": 30.0,
               "time_to_quality_s_flow_matching": 9.0,
               "nfe_to_quality_euler_ot": 2, "nfe_to_quality_euler_ot_reached": 1,
               "nfe_to_quality_rk4_ot": 1, "nfe_to_quality_rk4_ot_reached": 0}
    flags = run.target_flags(results)
    assert flags["target_train_speedup_2x_met"] == 1
    assert flags["target_time_to_quality_beats_peers_met"] == 0     # flow_matching was faster
    assert flags["nfe_to_quality_best"] == 2 and flags["target_nfe_at_most_2_met"] == 1
    results["time_to_quality_s_flow_matching"] = 11.0
    results["nfe_to_quality_euler_ot_reached"] = 0
    flags = run.target_flags(results)
    assert flags["target_time_to_quality_beats_peers_met"] == 1
    assert flags["target_nfe_at_most_2_met"] == 0 and "nfe_to_quality_best" not in flags


def test_quick_run_writes_a_flat_json_of_finite_numbers(tiny_results, tmp_path):
    out = tmp_path / "results.json"
    run.write_results(tiny_results, out)
    results = json.loads(out.read_text())
    required = ["train_steps_per_s_chapter_loop", "train_steps_per_s_package", "time_to_quality_s_package",
                "time_to_quality_package_reached", "w2_floor", "target_train_speedup_2x_met",
                "target_time_to_quality_beats_peers_met", "target_nfe_at_most_2_met"]
    required += [f"nfe_to_quality_{s}_{c}" for s in nfe.SOLVERS for c in ("independent", "ot")]
    missing = [key for key in required if key not in results]
    assert not missing
    for key, value in results.items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool), key
        assert math.isfinite(value), key
        if key.endswith("_reached") or key.startswith("target_"):
            assert value in (0, 1), key
    machine = json.loads((tmp_path / "machine.json").read_text())
    assert {"cpu", "cores", "date", "torch"} <= set(machine)


def test_report_and_figure_from_results(tiny_results, tmp_path):
    text = report.markdown(tiny_results, {"cpu": "Test CPU", "cores": 2, "date": "2026-01-01", "torch": "x"})
    assert "Test CPU" in text and "2026-01-01" in text
    assert "| euler |" in text and "| Claim | Measured | Target | Met |" in text
    from benchmarks.plot import plot_results

    path = plot_results(tiny_results, tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_notebook_time_ends_at_the_last_cell_reply():
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from benchmarks.notebooks import last_reply_time

    cells = [new_code_cell("1"), new_markdown_cell("text"), new_code_cell("2"), new_code_cell("3")]
    cells[0].metadata["execution"] = {"shell.execute_reply": "2026-11-29T07:00:01.500000Z"}
    cells[2].metadata["execution"] = {"shell.execute_reply": "2026-11-29T07:00:09.250000Z"}
    stamp = last_reply_time(new_notebook(cells=cells))      # the last cell was never run: not counted
    assert stamp.isoformat() == "2026-11-29T07:00:09.250000+00:00"
    with pytest.raises(ValueError, match="no executed code cell"):
        last_reply_time(nbformat.v4.new_notebook(cells=[new_code_cell("1")]))
