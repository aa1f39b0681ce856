"""The loop every trainer shares (training.run_steps): autograd steps, progress bar, loss history, schedule."""
import pytest
import torch

from gen_models_utilities import VelocityField, create_ring_gaussians, reflow, sample_base, train, training
from gen_models_utilities.baselines import diffusion
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


def test_run_steps_follows_the_schedule_and_leaves_the_model_in_eval_mode(monkeypatch):
    model = torch.nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)
    optimizers = []
    monkeypatch.setattr(training, "make_optimizer", lambda model, lr: optimizers.append(
        torch.optim.SGD(model.parameters(), lr=lr)) or optimizers[-1])
    rates = []

    def batch_loss():
        rates.append(optimizers[0].param_groups[0]["lr"])
        return model(torch.ones(1, 1)).pow(2).sum()

    result = run_steps(model, batch_loss, 4, 0.1, "cosine", TrainingResult(), progress=False)
    assert rates == pytest.approx([0.1, 0.08535534, 0.05, 0.01464466])   # 0.1 * 0.5 (1 + cos(pi k / 4))
    # (w + b)^2 from w + b = 1: a step at rate lr multiplies w + b by (1 - 4 lr): 0.6, 0.6586, 0.8.
    assert result.losses == pytest.approx([1.0, 0.36, 0.15614, 0.09993], rel=1e-3)
    assert not model.training


def test_train_takes_its_gradients_from_autograd(ring_data):
    """One step of train is the chapter's step: the same batch by hand gives the same weights."""
    points, _ = ring_data
    torch.manual_seed(0)
    model, by_hand = VelocityField(hidden_dim=16), VelocityField(hidden_dim=16)
    by_hand.load_state_dict(model.state_dict())
    result = train(model, points, n_steps=1, batch_size=8, lr=1e-2, schedule="constant", seed=5, progress=False)
    rng = torch.Generator().manual_seed(5)                   # replay train's draws in its order
    x1 = torch.as_tensor(points)[torch.randint(0, len(points), (8,), generator=rng)]
    x0 = sample_base("gaussian", 8, generator=rng)
    t = torch.rand(8, 1, generator=rng)
    optimizer = torch.optim.AdamW(by_hand.parameters(), lr=1e-2)
    loss = torch.nn.functional.mse_loss(by_hand((1 - t) * x0 + t * x1, t), x1 - x0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert result.losses == pytest.approx([loss.item()], rel=1e-5)
    for mine, theirs in zip(model.parameters(), by_hand.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


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
