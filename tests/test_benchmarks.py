"""The benchmark pieces on tiny budgets: they run, and results.json has the promised schema.

No timing is asserted (the machine's load decides timings); only shapes, names, finiteness
and the logic that turns numbers into verdicts and flags.
"""
import json
import math

import pytest
import torch

from benchmarks import nfe, ot_cost, quality, report, run, speed, time_to_quality
from benchmarks.contenders import PEERS, ChapterLoop, fresh_model
from gen_models_utilities import create_ring_gaussians, solvers

TINY = run.Budget(name="quick", judge_samples=200, speed_chunk=3, speed_rounds=1, speed_batch_sizes=(16, 32),
                  cap_s=0.5, ladder=(5,), step_ladder=(1, 2), tolerance_ladder=(3e-1,), reflow_steps=3,
                  reflow_pairs=100, widget_repeats=1, ot_chunk=2, ot_rounds=1, notebooks=False)


@pytest.fixture(scope="module")
def tiny_results():
    torch.set_num_threads(1)
    return run.run_all(TINY, log=lambda *_: None)


def test_training_speed_reports_every_contender_at_every_batch():
    speeds = speed.training_speed(chunk_steps=2, rounds=1, batch_sizes=(8, 16))
    names = ("package", "chapter_loop")
    assert set(speeds) == ({f"speed_steps_per_s_{n}_batch{b}" for n in names for b in (8, 16)}
                           | {f"speed_ratio_package_vs_chapter_loop_batch{b}" for b in (8, 16)})
    assert all(math.isfinite(v) and v > 0 for v in speeds.values())
    assert speeds["speed_ratio_package_vs_chapter_loop_batch8"] == pytest.approx(
        speeds["speed_steps_per_s_package_batch8"] / speeds["speed_steps_per_s_chapter_loop_batch8"])


def test_ot_cost_is_each_couplings_step_time_over_an_independent_step(monkeypatch):
    seen = []

    def fake_run(model, data, n_steps, seed=0, coupling="independent", **recipe):
        seen.append((coupling, recipe["batch_size"], recipe["lr"]))
        return n_steps * {"independent": 0.004, "ot": 0.040, "ot_block64": 0.006}[coupling]

    monkeypatch.setattr(ot_cost, "package_run", fake_run)
    recipe = {"batch_size": 64, "lr": 2e-3, "schedule": "cosine", "time_sampling": "logit_normal", "model": "x"}
    costs = ot_cost.ot_step_cost(recipe, chunk_steps=5, rounds=2, couplings=("ot", "ot_block64"), n_points=100)
    assert costs["ot_cost_ms_per_step_independent_batch64"] == pytest.approx(4.0)
    assert costs["ot_cost_ratio_ot_batch64"] == pytest.approx(10.0)
    assert costs["ot_cost_ratio_ot_block64_batch64"] == pytest.approx(1.5)
    assert "ot_cost_ratio_independent_batch64" not in costs
    assert {batch for _, batch, _ in seen} == {64} and {lr for _, _, lr in seen} == {2e-3}   # one recipe
    lines = report.ot_cost_lines(costs)
    assert lines[2].startswith("| ot (batch 64) | 40.0") and lines[3].startswith("| ot_block64 (batch 64) | 6.0")


def test_every_speed_contender_trains_at_the_same_recipe():
    """Same weights, batch and learning rate for every contender; each one moves the weights."""
    pytest.importorskip("torchcfm")
    pytest.importorskip("flow_matching")
    data = create_ring_gaussians(250, seed=0)[0]
    runs = speed.contenders(data, batch_size=100, peers=tuple(PEERS))
    assert set(runs) == {"package", "chapter_loop", *PEERS}
    start = [p.detach().clone() for p in runs["package"].__self__.model.parameters()]
    for name, run_steps in runs.items():
        loop = run_steps.__self__
        assert all(torch.equal(a, b) for a, b in zip(start, loop.model.parameters())), name     # same weights
        steps, seconds = run_steps(3)
        assert steps >= 3 and seconds > 0, name
        assert any(not torch.equal(a, b) for a, b in zip(start, loop.model.parameters())), name
        if hasattr(loop, "optimizer"):              # the package's train makes its AdamW from SAME_RECIPE
            assert loop.optimizer.param_groups[0]["lr"] == speed.SAME_RECIPE["lr"], name
            assert isinstance(loop.optimizer, torch.optim.AdamW), name


def test_chapter_loop_takes_one_step_per_batch_and_learns():
    data = create_ring_gaussians(250, seed=0)[0]
    model = fresh_model(0)
    before = [p.detach().clone() for p in model.parameters()]
    steps, seconds = ChapterLoop(model, data, batch_size=100).run(4)
    assert steps == 2 * 3                            # 250 points in batches of 100: 3 batches an epoch
    assert seconds > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_recipe_variants_change_only_the_schedule_and_the_times():
    variants = time_to_quality.recipe_variants({"batch_size": 512, "lr": 2e-3, "schedule": "cosine", "n_steps": 8})
    assert set(variants) == {"constant_uniform", "constant_logit_normal", "cosine_uniform", "cosine_logit_normal"}
    for name, recipe in variants.items():
        assert recipe == {"batch_size": 512, "lr": 2e-3, "schedule": name.split("_", 1)[0],
                          "time_sampling": name.split("_", 1)[1]}


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


def _speeds(chapter: float, peers: dict) -> dict:
    results = {"speed_ratio_package_vs_chapter_loop_batch1000": chapter}
    for name, ratios in peers.items():
        results.update({f"speed_ratio_package_vs_{name}_batch{b}": r for b, r in zip((256, 1000), ratios)})
    return results


def test_target_flags():
    results = {**_speeds(2.5, {"torchcfm": (1.3, 1.1), "flow_matching": (1.2, 1.05)}),
               "nfe_to_quality_euler_ot": 2, "nfe_to_quality_euler_ot_reached": 1,
               "nfe_to_quality_rk4_ot": 1, "nfe_to_quality_rk4_ot_reached": 0}
    flags = run.target_flags(results)
    assert flags["target_train_2x_chapter_loop_met"] == 1 and flags["target_train_faster_than_peers_met"] == 1
    assert flags["nfe_to_quality_best"] == 2 and flags["target_nfe_at_most_2_met"] == 1
    results.update(_speeds(1.9, {"flow_matching": (1.2, 0.98)}))       # slower than one peer at batch 1000
    results["nfe_to_quality_euler_ot_reached"] = 0
    flags = run.target_flags(results)
    assert flags["target_train_2x_chapter_loop_met"] == 0 and flags["target_train_faster_than_peers_met"] == 0
    assert flags["target_nfe_at_most_2_met"] == 0 and "nfe_to_quality_best" not in flags
    only_one_peer = _speeds(2.5, {"torchcfm": (1.3, 1.1)})              # a peer not installed: not met
    assert run.target_flags(only_one_peer)["target_train_faster_than_peers_met"] == 0


def test_quick_run_writes_a_flat_json_of_finite_numbers(tiny_results, tmp_path):
    out = tmp_path / "results.json"
    run.write_results(tiny_results, out)
    results = json.loads(out.read_text())
    required = ["w2_floor", "target_train_2x_chapter_loop_met", "target_train_faster_than_peers_met",
                "target_nfe_at_most_2_met", "shipped_recipe_batch_size", "shipped_recipe_lr"]
    required += [f"speed_steps_per_s_{n}_batch{b}" for n in ("package", "chapter_loop") for b in (16, 32)]
    required += [f"time_to_quality_{key}_{name}" if key == "s" else f"time_to_quality_{name}_{key}"
                 for name in time_to_quality.recipe_variants({"batch_size": 1, "lr": 1}) for key in ("s", "reached")]
    required += [f"nfe_to_quality_{s}_{c}" for s in solvers.solver_names() for c in ("independent", "ot", "reflow")]
    required += [f"ot_cost_ratio_{c}_batch512" for c in ot_cost.OT_COUPLINGS]
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
    assert "| Claim | Measured | Target | Met |" in text
    assert all(f"| {name} |" in text for name in solvers.solver_names())      # one NFE row per solver
    assert "| 16 |" in text and "| 32 |" in text                                # one speed row per batch
    assert "| constant, uniform (the chapter's) |" in text
    assert "| minibatch OT's cost per training step |" in text and "| ot_block64 (batch 512) |" in text
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


def test_a_solver_registered_at_run_time_is_swept_and_reported():
    solvers.register_solver(solvers.Solver("euler_twice", 1, 1, lambda v, x, t, h: solvers.euler_step(v, x, t, h)))
    try:
        class FakeJudge:
            def judge(self, model, check_modes=True, n_steps=1, method="euler", **options):
                return quality.Verdict(w2=0.1, off_mode=0.0, nfe=n_steps, passed=n_steps >= 2)

        metrics = nfe.nfe_to_quality(FakeJudge(), {"independent": None}, step_ladder=(1, 2, 4),
                                     tolerance_ladder=(1e-2,), log=lambda *_: None)
        assert metrics["nfe_to_quality_euler_twice_independent"] == 2
        assert set(solvers.solver_names()) == {key.split("_independent")[0][len("nfe_to_quality_"):]
                                               for key in metrics if key.endswith("_independent")}
        assert "| euler_twice | 2 |" in report.nfe_lines(metrics)
    finally:
        del solvers.SOLVERS["euler_twice"]
