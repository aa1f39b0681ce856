"""Part 2 of the exercise checks (the loss): every differently written right answer passes, arguments that
are not answers are refused, and the training check names a forgotten zero_grad."""
import numpy as np
import pytest
import torch

from gen_models_utilities import VelocityField, create_ring_gaussians
from gen_models_utilities import exercises as checks
from gen_models_utilities.exercises import ExerciseFailure
from gen_models_utilities.marginal_field import RingMarginalField

EXACT = RingMarginalField()


@pytest.fixture(scope="module")
def onehot_model():
    from gen_models_utilities.pretrained import load_pretrained

    return load_pretrained("onehot", "gaussian")[0]


def _pairs(n, seed, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=generator, dtype=dtype)
    x1 = torch.from_numpy(create_ring_gaussians(n, generator=generator)[0]).to(dtype)
    return x0, x1, torch.rand(n, 1, generator=generator, dtype=dtype)


def difference(model, n_pairs, seed):                      # conditional minus marginal loss of the model
    x0, x1, t = _pairs(n_pairs, seed)
    x_t = (1 - t) * x0 + t * x1
    with torch.no_grad():
        v = model(x_t, t)
    return float(((v - (x1 - x0)) ** 2).mean() - ((v - EXACT(x_t, t)) ** 2).mean())


def exact_fields_loss(model, n_pairs, seed):                # the model does not matter: the exact field's loss
    x0, x1, t = _pairs(n_pairs, seed, torch.float64)
    x_t = (1 - t) * x0 + t * x1
    return torch.nn.functional.mse_loss(EXACT(x_t, t), x1 - x0)   # a 0-dim tensor


def second_moments(model, n_pairs, seed):                   # E||x1 - x0||^2 - E||u_t(x_t)||^2, halved
    x0, x1, t = _pairs(n_pairs, seed)
    x_t = (1 - t) * x0 + t * x1
    return float((((x1 - x0) ** 2).sum(dim=1) - (EXACT(x_t, t) ** 2).sum(dim=1)).mean() / 2)


def stratified_times(model, n_pairs, seed):                 # t on a midpoint grid instead of random
    x0, x1, _ = _pairs(n_pairs, seed)
    t = ((torch.arange(n_pairs) + 0.5) / n_pairs)[:, None]
    x_t = (1 - t) * x0 + t * x1
    with torch.no_grad():
        v = model(x_t, t)
    return np.float64(((v - (x1 - x0)) ** 2).mean() - ((v - EXACT(x_t, t)) ** 2).mean())


@pytest.mark.parametrize("loss_constant", [difference, exact_fields_loss, second_moments, stratified_times])
def test_loss_constant_check_accepts_every_unbiased_estimate(loss_constant, trained_fm, capsys):
    checks.check_loss_constant(loss_constant, trained_fm)
    assert capsys.readouterr().out.startswith("Correct:")


def test_loss_constant_check_names_the_conditional_loss_alone(trained_fm):
    def conditional_only(model, n_pairs, seed):
        x0, x1, t = _pairs(n_pairs, seed)
        with torch.no_grad():
            return float(((model((1 - t) * x0 + t * x1, t) - (x1 - x0)) ** 2).mean())
    with pytest.raises(ExerciseFailure, match="the conditional loss alone"):
        checks.check_loss_constant(conditional_only, trained_fm)


def test_loss_constant_check_refuses_a_number(trained_fm):
    with pytest.raises(TypeError, match="callable"):
        checks.check_loss_constant(2.83, trained_fm)


def _loss_at_t0_tensor(model, x0, x1, onehot=None):
    t = torch.zeros(len(x0), 1)
    v = model(x0, t) if onehot is None else model(x0, t, onehot)
    return torch.nn.functional.mse_loss(v, x1 - x0)           # a tensor that still requires grad


def _loss_at_t0_float_time(model, x0, x1, onehot=None):
    with torch.no_grad():
        v = model(x0, 0.0) if onehot is None else model(x0, 0.0, onehot)
    return (((v - (x1 - x0)) ** 2).numpy().astype(np.float64)).mean()        # a numpy float64


@pytest.mark.parametrize("loss_at_t0", [_loss_at_t0_tensor, _loss_at_t0_float_time])
def test_floor_check_accepts_tensors_and_numpy_floats(loss_at_t0, trained_fm, onehot_model, capsys):
    checks.check_floor_at_t0(loss_at_t0, 4.5, 0.06, trained_fm, onehot_model)
    assert capsys.readouterr().out.startswith("Correct:")


def test_floor_check_refuses_a_prediction_that_is_not_a_number(trained_fm, onehot_model):
    with pytest.raises(AssertionError, match="PREDICTED_FLOOR_ONEHOT is not a number"):
        checks.check_floor_at_t0(_loss_at_t0_tensor, 4.5, "small", trained_fm, onehot_model)


def test_grade_floor_prediction_names_a_listed_mistake():
    with pytest.raises(ExerciseFailure, match="Typical mistake: a floor of zero"):
        checks.grade_floor_prediction("P", 0.0, 0.045, 0.085, {0.0: ("a floor of zero", "hint")})
    assert checks.grade_floor_prediction("P", 0.06, 0.045, 0.085, {}) == 0.06


def test_loss_check_accepts_mse_loss_and_a_hand_written_mean(capsys):
    checks.check_loss(lambda m, x0, x1, t: torch.nn.functional.mse_loss(m((1 - t) * x0 + t * x1, t), x1 - x0))
    checks.check_loss(lambda m, x0, x1, t: ((m(x0 + t * (x1 - x0), t) - x1 + x0) ** 2).sum() / x0.numel())
    assert capsys.readouterr().out.count("Correct:") == 2


def _train(n_steps, zero_grad=True, schedule=True, lr=2e-3, batch_size=256, seed=0):
    torch.manual_seed(seed)
    model, generator = VelocityField(), torch.Generator().manual_seed(seed)
    points = torch.from_numpy(create_ring_gaussians(8000, seed=0)[0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps) if schedule else None
    losses = []
    for _ in range(n_steps):
        x1 = points[torch.randint(len(points), (batch_size,), generator=generator)]
        x0, t = torch.randn(batch_size, 2, generator=generator), torch.rand(batch_size, 1, generator=generator)
        loss = torch.nn.functional.mse_loss(model((1 - t) * x0 + t * x1, t), x1 - x0)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if decay:
            decay.step()
        losses.append(loss.item())
    return model.eval(), losses


def test_training_check_names_a_forgotten_zero_grad():
    model, losses = _train(100, zero_grad=False)
    with pytest.raises(ExerciseFailure, match="optimizer.zero_grad\\(\\) forgotten"):
        checks.check_trained_model(model, losses)


def test_a_held_gradient_of_one_step_is_not_taken_for_a_forgotten_zero_grad():
    model, _ = _train(100)
    assert checks.part2_loss._gradient_ratio(model) < checks.part2_loss.GRAD_RATIO_LIMIT / 2


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [dict(schedule=False), dict(schedule=False, lr=1e-3), dict(batch_size=128, lr=1e-3)],
                         ids=["constant lr 2e-3", "constant lr 1e-3", "batch 128, cosine from 1e-3"])
def test_training_check_accepts_other_reasonable_recipes(recipe, capsys):
    model, losses = _train(2000, **recipe)
    checks.check_trained_model(model, losses)
    assert capsys.readouterr().out.startswith("Correct:")
