"""The explorers' Python side, without a browser: controls, stored learned views, messages, the live trainer.

The models are tiny and trained for a few steps: these tests check the plumbing (which views are
stored, what the kernel answers, what a bad value does), not sample quality. What the browser does
with the views is tested in test_browser.py.
"""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from gen_models_utilities import (ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField,
                                  create_ring_gaussians, generate, train)
from gen_models_utilities import widgets
from gen_models_utilities.widgets import EXPLORERS, builders, views
from gen_models_utilities.widgets.explorer import pack, unpack


def _quick(model_class, **train_kwargs):
    torch.manual_seed(0)
    model = model_class()
    points, labels = create_ring_gaussians(600, seed=0)
    if model_class is ConditionalVelocityField:
        train_kwargs["labels"] = labels
    train(model, points, n_steps=30, batch_size=64, seed=0, progress=False, **train_kwargs)
    return model.eval()


@pytest.fixture(scope="module")
def fm_models():
    return {"gaussian": _quick(VelocityField), "uniform": _quick(VelocityField, base="uniform")}


@pytest.fixture(scope="module")
def onehot_model():
    return _quick(ConditionalVelocityField, condition_dropout=0.2)


@pytest.fixture(scope="module")
def radius_model():
    return _quick(ConditionalVelocityFieldRadius)


class Recorder:
    """Stands in for the comm: what the explorer sends to the browser."""

    def __init__(self, explorer):
        self.sent = []
        explorer.send = lambda content, buffers=None: self.sent.append((content, list(buffers or [])))

    def ask(self, explorer, content):
        explorer._on_message(explorer, content, [])
        return self.sent[-1]


# ---------------------------------------------------------------- the views' encoding

def test_points_travel_as_int16_a_2048th_apart():
    points = torch.tensor([[0.1234, -3.7], [15.9, -15.9]])
    back = views.unfine(views.fine(points))
    assert np.abs(back - points.numpy()).max() <= 0.5 / views.FINE_SCALE + 1e-7
    assert views.unfine(views.fine([[40.0, -40.0]])).tolist() == [[32767 / 2048, -32767 / 2048]]   # clipped


def test_a_path_view_keeps_every_step_of_a_short_solve_and_eight_parts_of_a_long_one():
    assert views.kept_steps(8) == list(range(9))
    assert views.kept_steps(100) == [0, 12, 25, 38, 50, 62, 75, 88, 100]
    assert views.kept_steps(32, max_middle=15) == list(range(0, 33, 2))


def test_a_path_view_reads_back_as_the_solve(fm_models):
    from gen_models_utilities import solve_ode

    x0 = views.on_fine_grid(torch.randn(60, 2, generator=torch.Generator().manual_seed(1)))
    path = solve_ode(fm_models["gaussian"], x0, n_steps=16, return_trajectory=True).trajectory.numpy()
    view = views.solved_paths(fm_models["gaussian"], x0, 16, "euler", tracked=20)
    tracked, final = views.read_path_view(view, x0)
    assert view["times"] == [0, 2, 4, 6, 8, 10, 12, 14, 16] and view["tracked"] == 20
    assert tracked.shape == (9, 20, 2) and final.shape == (60, 2)
    assert np.abs(final - path[-1]).max() <= 0.5 / views.FINE_SCALE + 1e-6
    assert np.abs(tracked[1:-1] - path[2:-1:2, :20]).max() <= 0.5 / views.COARSE_SCALE + 1e-6


def test_arrows_read_back_within_their_int8_step():
    u, v = np.array([[0.5, -2.0]]), np.array([[1.0, 4.0]])
    view = views.arrow_view(u, v)
    back = views.read_arrow_view(view)
    assert view["scale"] == 4.0 and np.abs(back - [[0.5, 1.0], [-2.0, 4.0]]).max() <= 4.0 / 254 + 1e-6


def test_packed_views_unpack_with_their_aliases():
    packed = pack({"a=0": {"steps": 2, "final": b"\x01\x02"}, "a=1": {"alias": "a=0"}, "a=2": {"uv": b"\x03"}})
    assert json.loads(packed["index"])["a=0"]["final"] == {"at": 0, "bytes": 2}
    assert unpack(packed, "a=1") == {"steps": 2, "final": b"\x01\x02"} and unpack(packed, "a=2") == {"uv": b"\x03"}
    assert unpack(packed, "a=9") is None and unpack({}, "a=0") is None


# ---------------------------------------------------------------- the builders and their controls

def test_every_explorer_of_the_table_is_built_by_its_builder():
    assert list(EXPLORERS) == ["samples", "field", "few_step", "modes", "radius", "guidance", "trainer"]
    for name, entry in EXPLORERS.items():
        assert entry.example.startswith(f"widgets.{entry.build.__name__}("), name
        assert getattr(widgets, entry.build.__name__) is entry.build


def test_the_sample_explorer_stores_a_view_per_base_step_count_and_solver(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_samples=50)
    assert list(explorer.controls) == ["field", "base", "steps", "solver", "t"]
    assert explorer.controls["base"].values == ("gaussian", "uniform")
    keys = explorer.offered_keys("paths")
    assert len(keys) == 2 * len(builders.STEP_CHOICES) * 4
    for key in keys:
        view = explorer.stored_view("paths", key)
        assert view is not None and view["final"] and len(view["final"]) == 50 * 2 * 2, key
    explorer.set(base="uniform", steps=4, solver="rk4")
    assert explorer.stored_view("paths", explorer.key("paths")) == explorer.view("paths")
    assert explorer.key("paths") == "base=1|steps=2|solver=3"


def test_a_stored_view_is_the_solve_it_names(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_samples=40, n_steps=8, method="heun")
    starts = views.unfine(explorer.arrays["x0:gaussian"])
    solved = generate(fm_models["gaussian"], 40, n_steps=8, method="heun", seed=0).x.numpy()
    _, final = views.read_path_view(explorer.view("paths"), starts)
    assert np.abs(final - solved).max() < 2e-3                     # the start points rounded to 1/2048


def test_values_a_control_does_not_offer_are_refused_by_name(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_samples=20, store=False)
    with pytest.raises(ValueError, match=r"steps must be one of \[1, 2, 4, 8, 32, 100\], got 7"):
        explorer.set(steps=7)
    with pytest.raises(ValueError, match="unknown control"):
        explorer.set(stepz=8)
    with pytest.raises(ValueError, match="solver must be one of"):
        explorer.set(solver="dopri5")
    explorer.set(t=0.35000000001)                                   # a float that is one of the t values
    assert explorer.settings["t"] == 0.35


@pytest.mark.parametrize("builder, kwargs, match", [
    (widgets.sample_explorer, dict(n_steps=7), "steps must be one of"),
    (widgets.sample_explorer, dict(base="moon"), "base must be one of"),
    (widgets.field_explorer, dict(t=0.33), "t must be one of"),
    (widgets.sample_explorer, dict(method="dopri5"), "solver must be one of"),
])
def test_builders_refuse_bad_starting_values(fm_models, builder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        builder(fm_models, store=False, **kwargs)


def test_explorers_need_the_right_kind_of_model(fm_models, onehot_model, radius_model):
    with pytest.raises(TypeError, match="condition_kind='onehot'"):
        widgets.mode_explorer(fm_models, store=False)
    with pytest.raises(TypeError, match="unconditional"):
        widgets.sample_explorer(onehot_model, store=False)
    with pytest.raises(TypeError, match="condition_kind='radius'"):
        widgets.radius_explorer(onehot_model, store=False)
    with pytest.raises(TypeError, match="dict"):
        widgets.few_step_explorer(fm_models["gaussian"], store=False)


def test_the_field_explorer_stores_the_learned_field_at_every_t(fm_models):
    explorer = widgets.field_explorer(fm_models)
    assert len(explorer.offered_keys("arrows")) == 2 * len(builders.TIMES)
    explorer.set(t=0.25, base="uniform")
    arrows = views.read_arrow_view(explorer.stored_view("arrows", explorer.key("arrows")))
    from gen_models_utilities.plotting import velocity_on_grid

    _, _, u, v = velocity_on_grid(fm_models["uniform"], 0.25, n_grid=builders.ARROW_SIDE)
    direct = np.stack([u.ravel(), v.ravel()], axis=1)
    assert np.abs(arrows - direct).max() <= np.abs(direct).max() / 254 + 1e-5
    assert explorer.spec["exact"]["requires"] == {"base": "gaussian"}


def test_the_mode_explorer_stores_arrows_at_three_times_and_computes_the_others(onehot_model):
    explorer = widgets.mode_explorer({"gaussian": onehot_model}, n_samples=30)
    assert explorer.controls["mode"].values == tuple(range(8))
    stored = json.loads(explorer.views["arrows"]["index"])
    assert len(stored) == 8 * 3 and len(json.loads(explorer.views["paths"]["index"])) == 8
    explorer.set(t=0.25, mode=5)
    assert explorer.stored_view("arrows", explorer.key("arrows")) is None
    content, buffers = Recorder(explorer).ask(explorer, {"kind": "request", "layer": "arrows",
                                                         "key": explorer.key("arrows")})
    assert content["kind"] == "view" and content["buffers"] == ["uv"] and len(buffers[0]) == 12 * 12 * 2


def test_the_radius_explorer_marks_the_trained_range(radius_model):
    radius_model.trained_radius_range.copy_(torch.tensor([2.5, 3.5]))
    explorer = widgets.radius_explorer({"gaussian": radius_model}, n_samples=30)
    assert explorer.spec["radius"]["trained"] == {"gaussian": [2.5, 3.5]}
    assert explorer.controls["radius"].values == builders.RADII
    import warnings

    with warnings.catch_warnings(record=True) as caught:            # the page marks extrapolation itself
        warnings.simplefilter("always")
        explorer.set(radius=5.0)
        explorer.view("paths")
    assert not caught, [str(w.message) for w in caught]


def test_the_few_step_explorer_stores_one_view_per_step_count(fm_models):
    explorer = widgets.few_step_explorer({"independent": fm_models["gaussian"], "other": fm_models["uniform"]},
                                         n_samples=40)
    index = json.loads(explorer.views["paths"]["index"])
    distinct = [key for key, entry in index.items() if "alias" not in entry]
    # euler: every budget its own step count; midpoint and heun: 8 distinct; rk4: 6
    assert len(index) == 2 * 4 * len(builders.NFE_CHOICES) and len(distinct) == 2 * (10 + 8 + 8 + 6)
    explorer.set(solver="rk4", nfe=3)                       # 3 evaluations: one RK4 step, at least one
    assert explorer.view("paths")["steps"] == 1
    assert explorer.spec["exact"]["requires"] == {"coupling": "independent"}
    without = widgets.few_step_explorer({"a": fm_models["gaussian"]}, exact_for=None, store=False)
    assert "field" not in without.controls and without.spec["exact"] is None


def test_the_guidance_explorer_stores_every_class_and_weight(onehot_model):
    explorer = widgets.guidance_explorer(onehot_model, label=3, guidance_scale=2.0, n_samples=16, n_steps=4)
    assert len(json.loads(explorer.views["paths"]["index"])) == 8 * len(builders.GUIDANCE_WEIGHTS)
    assert explorer.settings["class"] == 3 and explorer.spec["exact"]["field"] == "guided"


def test_a_registered_base_and_solver_are_offered(fm_models, monkeypatch):
    from gen_models_utilities import base_distributions, solvers

    def on_the_circle(n, generator):
        return torch.nn.functional.normalize(torch.randn(n, 2, generator=generator))

    circle = base_distributions.BaseDistribution("circle", "unit circle", on_the_circle)
    monkeypatch.setitem(base_distributions.BASES, "circle", circle)
    monkeypatch.setitem(solvers.SOLVERS, "ralston", solvers.Solver("ralston", 2, 2, solvers.heun_step))
    explorer = widgets.sample_explorer({"gaussian": fm_models["gaussian"], "circle": fm_models["uniform"]},
                                       n_samples=20, store=False)
    assert explorer.controls["base"].values == ("gaussian", "circle")
    assert "ralston" in explorer.controls["solver"].values
    explorer.set(base="circle", solver="ralston", steps=2)
    assert explorer.view("paths")["steps"] == 2


# ---------------------------------------------------------------- what the browser asks

def test_the_kernel_answers_a_request_with_typed_arrays(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_samples=30, store=False)
    recorder = Recorder(explorer)
    assert recorder.ask(explorer, {"kind": "hello"})[0] == {"kind": "hello"}
    explorer.set(steps=4, solver="midpoint")
    content, buffers = recorder.ask(explorer, {"kind": "request", "layer": "paths", "key": explorer.key("paths")})
    assert content["kind"] == "view" and content["key"] == explorer.key("paths")
    assert content["buffers"] == ["final", "middle"] and content["view"]["steps"] == 4
    assert buffers[0] == explorer.view("paths")["final"]


@pytest.mark.parametrize("content", [
    {"kind": "request", "layer": "paths", "key": "base=9|steps=0|solver=0"},
    {"kind": "request", "layer": "arrows", "key": "t=1"},
    {"kind": "request", "layer": "paths", "key": "garbage"},
    {"kind": "request"},
])
def test_a_bad_request_is_refused_with_a_message(fm_models, content):
    explorer = widgets.sample_explorer(fm_models, n_samples=20, store=False)
    answer, _ = Recorder(explorer).ask(explorer, content)
    assert answer["kind"] == "refused" and answer["message"].startswith("could not compute this view")


def test_unknown_messages_are_ignored(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_samples=20, store=False)
    recorder = Recorder(explorer)
    for content in ({"kind": "nonsense"}, "not a dict", {"kind": "command", "name": "start"}):
        explorer._on_message(explorer, content, [])
    assert recorder.sent == []


def test_one_shared_module_per_kernel_carries_the_es_module(fm_models):
    from gen_models_utilities.widgets.explorer import MODULE_FILE

    first = widgets.sample_explorer(fm_models, n_samples=20, store=False)
    second = widgets.field_explorer(fm_models, store=False)
    assert first.module is second.module is widgets.shared_module()
    assert first.module.code == MODULE_FILE.read_text()
    assert "export function ringField" in first.module.code and "export function solve" in first.module.code
    assert "explorerModule(model)" in first._esm


def test_an_explorer_displays_as_its_widget(fm_models):
    explorer = widgets.sample_explorer(fm_models, n_samples=20, store=False)
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.model_id
    assert "samples explorer" in repr(explorer)


# ---------------------------------------------------------------- the live trainer

@pytest.fixture
def trainer_explorer():
    points, _ = create_ring_gaussians(400, seed=0)
    explorer = widgets.training_explorer(points, batch_size=64, n_preview=100)
    yield explorer
    explorer.pause()


def frame(explorer) -> dict:
    return explorer.views["frame"]


def test_the_trainer_streams_frames_as_it_trains(trainer_explorer):
    explorer = trainer_explorer
    assert list(explorer.controls) == ["base", "coupling", "lr", "batch_size", "t"]
    assert explorer.controls["coupling"].labels == ("independent", "minibatch OT")
    assert frame(explorer)["step"] == 0
    explorer.train_steps(30)
    shown = frame(explorer)
    assert shown["step"] == 30 and shown["summary"].startswith("step 30 ")
    assert len(shown["fields"]["times"]) == len(builders.TIMES) and shown["paths"]["steps"] == 8
    assert len(np.frombuffer(shown["losses"], "<f4")) == 30 and explorer.status == "paused at step 30"
    model = explorer.model                                    # a copy: training on leaves it
    weights = [p.clone() for p in model.parameters()]
    explorer.train_steps(5)
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    assert widgets.sample_explorer(model, n_samples=20, n_steps=4, store=False).view("paths")["steps"] == 4


def test_the_trainers_settings_apply(trainer_explorer):
    explorer = trainer_explorer
    explorer.train_steps(10)
    explorer.set(lr=3e-3)                                     # applies from the next step
    assert explorer.trainer.optimizer.param_groups[0]["lr"] == 3e-3 and explorer.trainer.n_steps == 10
    explorer.set(batch_size=128)
    explorer.train_steps(2)
    assert explorer.trainer.n_steps == 12 and "batch 128" in frame(explorer)["summary"]
    explorer.set(t=0.3)                                       # t is the browser's: no new frame
    assert frame(explorer)["step"] == 12
    explorer.set(coupling="ot")                               # a new coupling starts afresh
    assert explorer.trainer.n_steps == 0 and "minibatch OT" in frame(explorer)["summary"]
    explorer.set(base="uniform")
    assert explorer.trainer.n_steps == 0 and "uniform base" in frame(explorer)["summary"]


def test_the_trainers_buttons_arrive_as_commands(trainer_explorer):
    import time

    explorer = trainer_explorer
    explorer._on_message(explorer, {"kind": "command", "name": "start"}, [])
    assert explorer.trainer.running
    deadline = time.monotonic() + 60
    while explorer.trainer.n_steps < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    explorer._on_message(explorer, {"kind": "command", "name": "pause"}, [])
    assert not explorer.trainer.running and explorer.status.startswith("paused")
    steps = explorer.trainer.n_steps
    time.sleep(0.2)
    assert explorer.trainer.n_steps == steps >= 20 and frame(explorer)["step"] == steps
    explorer._on_message(explorer, {"kind": "command", "name": "reset"}, [])
    assert explorer.trainer.n_steps == 0


def test_reset_gives_the_same_training_again(trainer_explorer):
    explorer = trainer_explorer
    explorer.train_steps(20)
    losses = list(explorer.trainer.losses)
    explorer.reset()
    explorer.train_steps(20)
    assert explorer.trainer.losses == losses                 # seeded: the same run again


def test_the_loss_floor_line_is_shown_only_where_it_holds(trainer_explorer):
    explorer = widgets.training_explorer(batch_size=64, n_preview=50, loss_floor=1.23)
    assert frame(explorer)["floor"] == 1.23
    explorer.set(coupling="ot")
    assert frame(explorer)["floor"] is None and "no exact-loss line" in frame(explorer)["floor_note"]


def test_one_trainer_at_a_time():
    from gen_models_utilities import live_training

    points, _ = create_ring_gaussians(300, seed=0)
    first = widgets.training_explorer(points, batch_size=64, n_preview=50)
    first.start()
    second = widgets.training_explorer(points, batch_size=64, n_preview=50)    # re-running the cell
    assert not first.trainer.running
    second.start()
    first.start()                                              # starting one pauses the other
    assert first.trainer.running and not second.trainer.running
    assert live_training.pause_all() == 1 and not first.trainer.running


def test_an_interrupted_cell_pauses_the_trainers():
    from types import SimpleNamespace

    from gen_models_utilities import live_training

    points, _ = create_ring_gaussians(300, seed=0)
    explorer = widgets.training_explorer(points, batch_size=64, n_preview=50)
    explorer.start()
    live_training._pause_after_interrupt(SimpleNamespace(error_in_exec=ValueError("not an interrupt")))
    assert explorer.trainer.running
    live_training._pause_after_interrupt(SimpleNamespace(error_in_exec=KeyboardInterrupt()))
    assert not explorer.trainer.running


def test_training_explorer_refuses_bad_settings():
    with pytest.raises(ValueError, match="coupling"):
        widgets.training_explorer(coupling="sinkhorn")
    with pytest.raises(ValueError, match="learning rate must be one of"):
        widgets.training_explorer(lr=0.5)
    with pytest.raises(ValueError, match="base"):
        widgets.training_explorer(base="moon")


def test_the_live_trainer_takes_the_steps_train_takes():
    """train() and the live trainer share one step: same seed, weights and batches, same losses."""
    from gen_models_utilities.live_training import LiveTrainer

    points, _ = create_ring_gaussians(300, seed=0)
    trainer = LiveTrainer(points, batch_size=64, lr=1e-3, seed=3)
    trainer.step(5)
    torch.manual_seed(3)                       # the trainer's model is VelocityField() seeded with its seed
    result = train(VelocityField(), points, n_steps=5, batch_size=64, lr=1e-3, seed=3, schedule="constant",
                   progress=False)
    assert len(result.losses) == 5 and trainer.losses == result.losses


def test_the_static_trainer_figure_shows_where_training_stands(trainer_explorer):
    trainer_explorer.train_steps(12)
    fig, text = widgets.training_figure(trainer_explorer.trainer, t=0.5)
    try:
        assert len(fig.axes) >= 3 and text.startswith("step 12 ") and "off every mode" in text
        assert widgets.figure_png(fig) == widgets.figure_png(fig)            # no timestamp in the bytes
    finally:
        plt.close(fig)


def test_on_colab_each_explorer_carries_its_module(fm_models, monkeypatch):
    """Colab's widget manager gets the whole ES module with each explorer (no shared module to look up)."""
    import sys
    import types

    from gen_models_utilities.widgets.explorer import LOADER, MODULE_FILE

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    explorer = widgets.field_explorer(fm_models, store=False)
    assert explorer._esm == MODULE_FILE.read_text() and explorer.get_state()["_esm"] == explorer._esm
    monkeypatch.delitem(sys.modules, "google.colab")
    assert widgets.field_explorer(fm_models, store=False)._esm == LOADER
