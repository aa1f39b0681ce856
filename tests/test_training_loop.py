"""The loop every trainer shares (training.run_steps): progress bar, loss history, schedule."""
import pytest
import torch

from gen_models_utilities import VelocityField, create_ring_gaussians, diffusion, reflow, train
from gen_models_utilities.training import TrainingResult, run_steps

DATA = create_ring_gaussians(200, seed=0)[0]


def _trainers():
    return {
        "training": lambda progress: train(VelocityField(), DATA, n_steps=3, batch_size=16, seed=0,
                                           progress=progress),
        "diffusion": lambda progress: diffusion.train_diffusion(VelocityField(), DATA, n_steps=3, batch_size=16,
                                                                seed=0, progress=progress),
        "reflow": lambda progress: reflow.train_on_pairs(
            VelocityField(), reflow.reflow_pairs(VelocityField(), 32, seed=0), n_steps=3, batch_size=16,
            seed=0, progress=progress),
    }


@pytest.mark.parametrize("desc", ["training", "diffusion", "reflow"])
def test_every_trainer_shows_a_text_bar_in_a_terminal_only_when_asked(desc, capsys):
    result = _trainers()[desc](True)
    shown = capsys.readouterr().err
    assert f"{desc}: 100%" in shown and "3/3" in shown
    assert len(result.losses) == 3 and result.seconds > 0
    _trainers()[desc](False)
    assert capsys.readouterr().err == ""


def test_the_environment_switches_the_default_bar_off(monkeypatch, capsys):
    monkeypatch.setenv("GEN_MODELS_PROGRESS", "1")
    _trainers()["training"](None)
    assert "training: 100%" in capsys.readouterr().err
    monkeypatch.setenv("GEN_MODELS_PROGRESS", "0")
    _trainers()["training"](None)
    assert capsys.readouterr().err == ""


def test_run_steps_follows_the_schedule_and_leaves_the_model_in_eval_mode():
    model = torch.nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    rates = []

    def step_loss(step):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        loss = model(torch.ones(1, 1)).pow(2).sum()
        loss.backward()
        return loss

    result = run_steps(model, optimizer, TrainingResult(), 4, 0.1, "cosine", step_loss, progress=False)
    assert rates == pytest.approx([0.1, 0.08535534, 0.05, 0.01464466])   # 0.1 * 0.5 (1 + cos(pi k / 4))
    # (w + b)^2 from w + b = 1: a step at rate lr multiplies w + b by (1 - 4 lr): 0.6, 0.6586, 0.8.
    assert result.losses == pytest.approx([1.0, 0.36, 0.15614, 0.09993], rel=1e-3)
    assert not model.training


def test_make_optimizer_falls_back_where_torch_has_no_fused_adamw(monkeypatch):
    from gen_models_utilities.training import make_optimizer

    model = torch.nn.Linear(2, 2)
    assert make_optimizer(model, 1e-3).defaults["fused"] is True
    real_adamw = torch.optim.AdamW

    def old_adamw(params, lr, fused=None):            # torch < 2.4 on a CPU
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be CUDA tensors")
        return real_adamw(params, lr=lr)

    monkeypatch.setattr(torch.optim, "AdamW", old_adamw)
    optimizer = make_optimizer(model, 1e-3)
    assert isinstance(optimizer, real_adamw) and not optimizer.defaults["fused"]
    assert len(optimizer.param_groups[0]["params"]) == 2
