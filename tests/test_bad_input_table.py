"""One table of bad calls across the public API: each is refused at the function's door.

A case passes when the call raises the expected type (ValueError or TypeError; AssertionError
for the exercise checkers, whose failures are explanations for a student) within a couple of
seconds, with a message that matches the case's pattern, which names the argument the caller
passed (and, where it helps, the value received and what is allowed), and when the raising frame
is the package's own code, not torch's or NumPy's.
"""
from __future__ import annotations

import functools
import re
import signal
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import gen_models_utilities as gmu
from gen_models_utilities import exercises as checks
from gen_models_utilities import guidance, live_training, marginal_field, metrics, plotting
from gen_models_utilities import animation, couplings, loaders, training, uncertainty
from gen_models_utilities.baselines import cnf, comparison, diffusion, likelihood
from gen_models_utilities.models import ExtrapolationWarning
from gen_models_utilities.uncertainty import Estimate
from gen_models_utilities.pretrained import catalogue

PACKAGE = Path(gmu.__file__).resolve().parent
TIME_LIMIT = 2.0          # seconds a refusal may take
NAN = float("nan")


def small(cls=gmu.VelocityField, **options):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return cls(hidden_dim=8, **options)


class Zoo:
    """What the cases call with, built on first use (outside the timed call)."""

    @functools.cached_property
    def fm(self):
        return small()

    @functools.cached_property
    def onehot(self):
        return small(gmu.ConditionalVelocityField)

    @functools.cached_property
    def radius(self):
        model = small(gmu.ConditionalVelocityFieldRadius)
        model.trained_radius_range.copy_(torch.tensor([2.3, 3.7]))
        return model

    @functools.cached_property
    def diffusion(self):
        return small(diffusion.DiffusionModel)

    @functools.cached_property
    def nan_model(self):
        model = small()
        with torch.no_grad():
            model.net[-1].bias.fill_(NAN)
        return model

    @functools.cached_property
    def odd_config(self):
        model = small()
        model.config["hidden_dim"] = np.int64(8)          # what a hand-written class might store
        return model

    @functools.cached_property
    def data(self):
        return gmu.create_ring_gaussians(64, seed=0)[0]

    @functools.cached_property
    def labels(self):
        return gmu.create_ring_gaussians(64, seed=0)[1]

    @functools.cached_property
    def folder(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="bad-input-"))

    @functools.cached_property
    def checkpoint(self) -> Path:
        return gmu.save_checkpoint(self.fm, self.folder / "fm.pt")

    @functools.cached_property
    def junk(self) -> Path:
        path = self.folder / "junk.pt"
        path.write_text("not a checkpoint")
        return path

    @functools.cached_property
    def trainer(self):
        return live_training.LiveTrainer(self.data, batch_size=16, n_preview=8, n_grid=2)

    @functools.cached_property
    def quality(self):
        return metrics.ring_quality(torch.from_numpy(self.data))

    @functools.cached_property
    def grid(self):
        return plotting.velocity_on_grid(self.fm, 0.5, n_grid=4)


Z = Zoo()


@pytest.fixture(scope="module", autouse=True)
def zoo_built():
    """Every object of the zoo exists before the first call is timed."""
    for name, value in vars(Zoo).items():
        if isinstance(value, functools.cached_property):
            getattr(Z, name)
X = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
TRAJECTORY = torch.zeros(3, 4, 2)


def nan_like(x, *rest):
    return torch.full_like(x, NAN)


def broken(*args):
    raise RuntimeError("index 7 is out of bounds for dimension 0 with size 4")


def one_step(x0):
    return x0 + marginal_field.RingMarginalField()(x0, 0.0)


# (what is wrong, the call, the exception type, a pattern the message must match)
CASES = [
    # ---------------------------------------------------------------- pretrained: store, catalogue
    ("save_checkpoint: numpy scalar in metadata",
     lambda: gmu.save_checkpoint(Z.fm, Z.folder / "a.pt", steps=np.int64(3)), TypeError, r"metadata steps.*int64"),
    ("save_checkpoint: tensor inside a metadata dict",
     lambda: gmu.save_checkpoint(Z.fm, Z.folder / "a.pt", quality={"w2": torch.tensor(1.0)}), TypeError,
     r"metadata quality\['w2'\].*Tensor"),
    ("save_checkpoint: non-str metadata key",
     lambda: gmu.save_checkpoint(Z.fm, Z.folder / "a.pt", recipe={1: "a"}), TypeError, r"metadata recipe.*str keys.*1"),
    ("save_checkpoint: an object in metadata",
     lambda: gmu.save_checkpoint(Z.fm, Z.folder / "a.pt", note=object()), TypeError, r"metadata note.*object"),
    ("save_checkpoint: numpy float in a metadata list",
     lambda: gmu.save_checkpoint(Z.fm, Z.folder / "a.pt", floors=[1.0, np.float32(2.0)]), TypeError,
     r"metadata floors\[1\].*float32"),
    ("save_checkpoint: model config holding a numpy number",
     lambda: gmu.save_checkpoint(Z.odd_config, Z.folder / "a.pt"), TypeError, r"model\.config\['hidden_dim'\].*int64"),
    ("save_checkpoint: path without .pt", lambda: gmu.save_checkpoint(Z.fm, Z.folder / "model.pth"), ValueError,
     r"path must end in \.pt.*model\.pth"),
    ("save_checkpoint: path of the wrong type", lambda: gmu.save_checkpoint(Z.fm, 3), TypeError, r"path must be.*3"),
    ("save_checkpoint: not a module", lambda: gmu.save_checkpoint("fm", Z.folder / "a.pt"), TypeError,
     r"model must be a torch.nn.Module.*'fm'"),
    ("save_checkpoint: unregistered class", lambda: gmu.save_checkpoint(torch.nn.Linear(2, 2), Z.folder / "a.pt"),
     TypeError, r"model must be one of .*Linear"),
    ("load_checkpoint: a text file", lambda: gmu.load_checkpoint(Z.junk), ValueError,
     r"junk\.pt is not a plain-data checkpoint and was refused: Unsupported operand"),
    ("load_checkpoint: unexpected class", lambda: gmu.load_checkpoint(Z.checkpoint, "ConditionalVelocityField"),
     ValueError, r"fm\.pt holds a VelocityField, expected a ConditionalVelocityField"),
    ("load_checkpoint: expected_class of the wrong type", lambda: gmu.load_checkpoint(Z.checkpoint, 3), TypeError,
     r"expected_class must be .*got 3"),
    ("load_checkpoint: unknown device", lambda: gmu.load_checkpoint(Z.checkpoint, map_location="gpu"), ValueError,
     r"map_location must be a device.*'gpu'"),
    ("load_pretrained: unknown kind", lambda: gmu.load_pretrained("fmm"), ValueError, r"kind must be one of .*'fmm'"),
    ("load_pretrained: unknown base", lambda: gmu.load_pretrained("fm", "gauss"), ValueError,
     r"base must be one of .*'gauss'"),
    ("load_pretrained: a kind not shipped on that base", lambda: gmu.load_pretrained("fm_reflow", "uniform"),
     ValueError, r"base must be 'gaussian' for the model kind 'fm_reflow', got 'uniform'"),
    ("load_pretrained: unknown device", lambda: gmu.load_pretrained("fm", map_location="tpu"), ValueError,
     r"map_location must be a device.*'tpu'"),
    ("PretrainedModels: unknown kind", lambda: gmu.PretrainedModels("radiuss"), ValueError,
     r"kind must be one of .*'radiuss'"),
    # ---------------------------------------------------------------- registries
    ("register_base: not a BaseDistribution", lambda: gmu.register_base("ring"), TypeError,
     r"base must be a BaseDistribution, got 'ring'"),
    ("register_base: empty name", lambda: gmu.register_base(gmu.BaseDistribution("", "ring", X.new_zeros)),
     ValueError, r"base\.name must be a non-empty string, got ''"),
    ("register_base: sampler not callable", lambda: gmu.register_base(gmu.BaseDistribution("ring", "ring", None)),
     TypeError, r"base\.sample must be callable.*None"),
    ("register_base: aliases given as one string",
     lambda: gmu.register_base(gmu.BaseDistribution("ring", "ring", X.new_zeros, aliases="circle")), TypeError,
     r"base\.aliases must be a tuple of names.*'circle'"),
    ("register_solver: zero evaluations",
     lambda: gmu.register_solver(gmu.Solver("mine", 1, 0, gmu.euler_step)), ValueError,
     r"solver\.evaluations must be an integer >= 1, got 0"),
    ("register_solver: fractional order", lambda: gmu.register_solver(gmu.Solver("mine", 1.5, 1, gmu.euler_step)),
     TypeError, r"solver\.order must be an integer.*1\.5"),
    ("register_solver: not a Solver", lambda: gmu.register_solver("rk4"), TypeError,
     r"solver must be a Solver, got 'rk4'"),
    ("register_coupling: pair not callable", lambda: gmu.register_coupling(gmu.Coupling("mine", "mine", None)),
     TypeError, r"coupling\.pair must be callable"),
    ("register_coupling: empty name",
     lambda: gmu.register_coupling(gmu.Coupling("", "mine", couplings.independent_coupling)), ValueError,
     r"coupling\.name must be a non-empty string, got ''"),
    ("register_model_class: not a class", lambda: gmu.register_model_class(3), TypeError,
     r"cls must be a torch.nn.Module class, got 3"),
    ("register_model_kind: not a ModelKind", lambda: catalogue.register_model_kind("fm"), TypeError,
     r"kind must be a ModelKind, got 'fm'"),
    ("register_model_kind: unknown base",
     lambda: catalogue.register_model_kind(catalogue.ModelKind("mine", {}, base="gauss")), ValueError,
     r"kind\.base must be None or one of .*'gauss'"),
    ("register_model_kind: recipe not a mapping",
     lambda: catalogue.register_model_kind(catalogue.ModelKind("mine", ["fm"])), TypeError,
     r"kind\.recipe must be a dict.*\['fm'\]"),
    # ---------------------------------------------------------------- solvers
    ("solve_ode: points wider than the model's", lambda: gmu.solve_ode(Z.fm, torch.zeros(4, 3)), ValueError,
     r"x0 has width 3.*model VelocityField takes points of width 2"),
    ("solve_ode: a noise-predicting model", lambda: gmu.solve_ode(Z.diffusion, X), TypeError,
     r"model must predict a velocity, got DiffusionModel"),
    ("solve_ode: a one-hot model without condition", lambda: gmu.solve_ode(Z.onehot, X), ValueError,
     r"ConditionalVelocityField needs condition=\(B, 8\)"),
    ("solve_ode: an unconditional model given a condition",
     lambda: gmu.solve_ode(Z.fm, X, condition=gmu.class_code(0, 8)), ValueError,
     r"condition must be None for VelocityField \(unconditional velocity\), got tensor of shape \(8,\)"),
    ("solve_ode: class labels for a one-hot model", lambda: gmu.solve_ode(Z.onehot, X, condition=torch.tensor([3])),
     ValueError, r"condition must be 8 wide.*class_code"),
    ("solve_ode: one-hot codes for a radius model",
     lambda: gmu.solve_ode(Z.radius, X, condition=gmu.class_code(3, 8)), ValueError,
     r"condition must be 1 wide for ConditionalVelocityFieldRadius"),
    ("solve_ode: too many steps", lambda: gmu.solve_ode(Z.fm, X, n_steps=10**9), ValueError,
     r"n_steps must be an integer between 1 and 1000000, got 1000000000"),
    ("solve_ode: steps times points too many", lambda: gmu.solve_ode(Z.fm, torch.zeros(100_000, 2), n_steps=100_000),
     ValueError, r"n_steps=100000 for x0 of 100000 points"),
    ("solve_ode: unknown method", lambda: gmu.solve_ode(Z.fm, X, method="euler2"), ValueError,
     r"method must be one of .*'euler2'"),
    ("solve_ode: x0 a list", lambda: gmu.solve_ode(Z.fm, [[0.0, 0.0]]), TypeError, r"x0 must be a tensor"),
    ("solve_ode: rtol zero", lambda: gmu.solve_ode(Z.fm, X, method="dopri5", rtol=0), ValueError,
     r"rtol must be > 0\.0, got 0\.0"),
    ("generate: too many samples", lambda: gmu.generate(Z.fm, n_samples=10**9), ValueError,
     r"n_samples must be an integer between 1 and 10000000, got 1000000000"),
    ("generate: steps times samples too many", lambda: gmu.generate(Z.fm, 5000, n_steps=10**6), ValueError,
     r"n_steps=1000000 for n_samples=5000"),
    ("generate: a noise-predicting model", lambda: gmu.generate(Z.diffusion, 10), TypeError,
     r"model must predict a velocity"),
    ("generate: misspelt base", lambda: gmu.generate(Z.fm, base="gausian"), ValueError,
     r"base must be one of .*'gausian'"),
    ("solver_sweep: a budget of the wrong type", lambda: gmu.solvers.solver_sweep(Z.fm, X, budgets=[4, "8"]),
     TypeError, r"budgets entry must be an integer.*'8'"),
    ("solver_sweep: budgets not a list", lambda: gmu.solvers.solver_sweep(Z.fm, X, budgets=10), TypeError,
     r"budgets must be a list or tuple.*10"),
    # ---------------------------------------------------------------- guidance
    ("GuidedVelocity: unconditional model", lambda: guidance.GuidedVelocity(Z.fm, gmu.class_code(0, 8), 2.0),
     TypeError, r"model must be a one-hot model, got VelocityField"),
    ("GuidedVelocity: negative scale", lambda: guidance.GuidedVelocity(Z.onehot, gmu.class_code(0, 8), -1.0),
     ValueError, r"guidance_scale must be >= 0\.0, got -1\.0"),
    ("GuidedVelocity: condition a string", lambda: guidance.GuidedVelocity(Z.onehot, "a", 1.0), TypeError,
     r"condition must be a real-valued array or tensor, got 'a'"),
    ("sample_guided: label outside the classes", lambda: guidance.sample_guided(Z.onehot, 8, 1.0), ValueError,
     r"label must be an integer between 0 and 7, got 8"),
    ("sample_guided: unconditional model", lambda: guidance.sample_guided(Z.fm, 0, 1.0), TypeError,
     r"model must be a one-hot model"),
    ("requested_mode_fraction: label 8", lambda: guidance.requested_mode_fraction(X, 8), ValueError,
     r"label must be an integer between 0 and 7, got 8"),
    ("requested_mode_fraction: 3-D points", lambda: guidance.requested_mode_fraction(torch.zeros(5, 3), 0),
     ValueError, r"samples must have shape \(N, 2\), got shape \(5, 3\)"),
    ("guidance_sweep: unconditional model", lambda: guidance.guidance_sweep(Z.fm), TypeError,
     r"model must be a one-hot model"),
    ("guidance_sweep: negative scale", lambda: guidance.guidance_sweep(Z.onehot, scales=(1.0, -2.0)), ValueError,
     r"scales entry must be >= 0\.0, got -2\.0"),
    ("guidance_sweep: scales a number", lambda: guidance.guidance_sweep(Z.onehot, scales=3.0), TypeError,
     r"scales must be a list or tuple.*3\.0"),
    ("guidance_sweep: seed too large", lambda: guidance.guidance_sweep(Z.onehot, seed=2**64 - 1), ValueError,
     r"seed must be an integer between 0 and \d+, got 18446744073709551615"),
    # ---------------------------------------------------------------- baselines.diffusion
    ("NoiseSchedule: beta_min zero", lambda: diffusion.NoiseSchedule(beta_min=0.0), ValueError,
     r"beta_min must be > 0\.0, got 0\.0"),
    ("NoiseSchedule: beta_max below beta_min", lambda: diffusion.NoiseSchedule(beta_max=0.05), ValueError,
     r"beta_max must be >= 0\.1, got 0\.05"),
    ("NoiseSchedule: s_min zero (the field divides by zero)", lambda: diffusion.NoiseSchedule(s_min=0.0), ValueError,
     r"s_min must be > 0\.0, got 0\.0"),
    ("DiffusionModel: fractional width", lambda: diffusion.DiffusionModel(hidden_dim=64.0), TypeError,
     r"hidden_dim must be an integer >= 1, got 64\.0"),
    ("DiffusionModel: beta_max a string", lambda: diffusion.DiffusionModel(beta_max="20"), TypeError,
     r"beta_max must be a real number, got '20'"),
    ("ProbabilityFlowField: a velocity model", lambda: diffusion.ProbabilityFlowField(Z.fm), TypeError,
     r"diffusion must be a DiffusionModel, got VelocityField"),
    ("ProbabilityFlowField: unknown clock", lambda: diffusion.ProbabilityFlowField(Z.diffusion, "log-snr"), ValueError,
     r"clock must be one of .*'log-snr'"),
    ("NoiseAsVelocity: a velocity model", lambda: diffusion.NoiseAsVelocity(Z.fm), TypeError,
     r"diffusion must be a DiffusionModel, got VelocityField"),
    ("sample_ancestral: a billion steps", lambda: diffusion.sample_ancestral(Z.diffusion, 10, n_steps=10**9),
     ValueError, r"n_steps must be an integer between 1 and 1000000, got 1000000000"),
    ("sample_ancestral: a billion samples", lambda: diffusion.sample_ancestral(Z.diffusion, n_samples=10**9),
     ValueError, r"n_samples must be an integer between 1 and 10000000, got 1000000000"),
    ("sample_ancestral: samples times steps too many",
     lambda: diffusion.sample_ancestral(Z.diffusion, n_samples=100_000, n_steps=100_000), ValueError,
     r"n_steps=100000 for n_samples=100000"),
    ("sample_ancestral: a velocity model", lambda: diffusion.sample_ancestral(Z.fm), TypeError,
     r"model must be a DiffusionModel, got VelocityField"),
    ("train_diffusion: a one-hot model", lambda: diffusion.train_diffusion(Z.onehot, Z.data, n_steps=2), TypeError,
     r"model must be an unconditional model, got ConditionalVelocityField"),
    ("train_diffusion: noise_schedule a string",
     lambda: diffusion.train_diffusion(Z.diffusion, Z.data, n_steps=2, noise_schedule="vp"), TypeError,
     r"noise_schedule must be a NoiseSchedule or None, got 'vp'"),
    ("train_diffusion: 3-D data", lambda: diffusion.train_diffusion(Z.diffusion, torch.zeros(5, 3), n_steps=2),
     ValueError, r"data must have shape \(N, 2\)"),
    # ---------------------------------------------------------------- baselines.cnf, likelihood, comparison
    ("train_cnf: a base without density", lambda: cnf.train_cnf(Z.fm, Z.data, base="ethz_logo", n_steps=1),
     ValueError, r"base must have a known density"),
    ("train_cnf: a billion ODE steps", lambda: cnf.train_cnf(Z.fm, Z.data, n_steps=1, ode_steps=10**9), ValueError,
     r"ode_steps must be an integer between 1 and \d+, got 1000000000"),
    ("train_cnf: a one-hot model", lambda: cnf.train_cnf(Z.onehot, Z.data, n_steps=1), TypeError,
     r"model must be an unconditional model, got ConditionalVelocityField"),
    ("train_cnf: a noise-predicting model", lambda: cnf.train_cnf(Z.diffusion, Z.data, n_steps=1), TypeError,
     r"model must predict a velocity"),
    ("cnf_log_likelihood: zero ODE steps", lambda: cnf.cnf_log_likelihood(Z.fm, X, ode_steps=0), ValueError,
     r"ode_steps must be an integer between 1 and \d+, got 0"),
    ("cnf_log_likelihood: 3-D points", lambda: cnf.cnf_log_likelihood(Z.fm, torch.zeros(4, 3)), ValueError,
     r"x1 must have shape \(N, 2\)"),
    ("log_likelihood: a noise-predicting model", lambda: likelihood.log_likelihood(Z.diffusion, X), TypeError,
     r"model must predict a velocity"),
    ("log_likelihood: a base without density", lambda: likelihood.log_likelihood(Z.fm, X, base="logo"), ValueError,
     r"base must have a known density.*'logo'"),
    ("log_likelihood: one-hot model without condition", lambda: likelihood.log_likelihood(Z.onehot, X), ValueError,
     r"condition"),
    ("log_likelihood: too many steps", lambda: likelihood.log_likelihood(Z.fm, X, n_steps=10**7), ValueError,
     r"n_steps must be an integer between 1 and 1000000, got 10000000"),
    ("hutchinson_divergence: a billion probes",
     lambda: likelihood.hutchinson_divergence(lambda x, t: -x, X, 0.5, n_probes=10**9),
     ValueError, r"n_probes must be an integer between 1 and \d+, got 1000000000"),
    ("hutchinson_divergence: unknown probe", lambda: likelihood.hutchinson_divergence(Z.fm, X, 0.5, probe="normal"),
     ValueError, r"probe must be one of \['rademacher', 'gaussian'\], got 'normal'"),
    ("hutchinson_divergence: points a string", lambda: likelihood.hutchinson_divergence(Z.fm, "x", 0.5),
     TypeError, r"x must be a real-valued array or tensor, got 'x'"),
    ("hutchinson_divergence: velocity not callable", lambda: likelihood.hutchinson_divergence("v", X, 0.5),
     TypeError, r"velocity must be callable.*'v'"),
    ("ring_log_density: zero std", lambda: likelihood.ring_log_density(X, std=0.0), ValueError,
     r"std must be > 0\.0, got 0\.0"),
    ("base_log_density: points a list", lambda: likelihood.base_log_density("gaussian", [[0.0, 0.0, 1.0]]),
     ValueError, r"x must have shape \(N, 2\), got shape \(1, 3\)"),
    ("plot_sample_densities: a million grid points a side",
     lambda: likelihood.plot_sample_densities({"a": X}, n_grid=10**6), ValueError,
     r"n_grid must be an integer between 2 and \d+, got 1000000"),
    ("quality_by_steps: sampler not callable", lambda: comparison.quality_by_steps("f", [4]), TypeError,
     r"sample must be callable.*'f'"),
    ("quality_by_steps: sampler returns 3-D points",
     lambda: comparison.quality_by_steps(lambda n: torch.zeros(5, 3), [4]), ValueError,
     r"sample\(4\) must have shape \(N, 2\)"),
    ("quality_by_steps: step_grid a number", lambda: comparison.quality_by_steps(lambda n: X, 5), TypeError,
     r"step_grid must be a list or tuple.*5"),
    ("fewest_steps_like_data: not a quality_by_steps result", lambda: comparison.fewest_steps_like_data({4: "x"}),
     TypeError, r"by_steps must be a quality_by_steps result"),
    ("short_verdict: not a Quality", lambda: comparison.short_verdict("x"), TypeError,
     r"quality must be a Quality.*'x'"),
    ("diverged: losses of strings", lambda: comparison.diverged(["a", "b"]), TypeError,
     r"losses must be a real-valued array"),
    ("format_table: rows not dicts", lambda: comparison.format_table({"a": 1}, ["x"]), TypeError,
     r"rows must be a dict .*got 1 for 'a'"),
    ("format_table: columns one string", lambda: comparison.format_table({"a": {"x": 1}}, "x"), TypeError,
     r"columns must be a list .*'x'"),
    # ---------------------------------------------------------------- reflow, training, live training
    ("reflow_pairs: a billion pairs", lambda: gmu.reflow_pairs(Z.fm, n_pairs=10**9), ValueError,
     r"n_pairs must be an integer between 1 and 10000000, got 1000000000"),
    ("reflow_pairs: pairs times steps too many", lambda: gmu.reflow_pairs(Z.fm, n_pairs=10**6, n_steps=10**4),
     ValueError, r"n_steps=10000 for n_pairs=1000000"),
    ("reflow_pairs: a noise-predicting model", lambda: gmu.reflow_pairs(Z.diffusion, 8), TypeError,
     r"model must predict a velocity"),
    ("reflow_pairs: class labels for a radius model",
     lambda: gmu.reflow_pairs(Z.radius, 3, conditions=torch.tensor([0, 3, 5])), ValueError,
     r"conditions must be 1 wide for ConditionalVelocityFieldRadius"),
    ("reflow_pairs: class labels for a one-hot model",
     lambda: gmu.reflow_pairs(Z.onehot, 4, conditions=torch.tensor([0, 1, 2, 3])), ValueError,
     r"conditions must be 8 wide.*class_code"),
    ("reflow_pairs: conditions for an unconditional model",
     lambda: gmu.reflow_pairs(Z.fm, 4, conditions=gmu.class_code(0, 8)), ValueError,
     r"conditions must be None for VelocityField"),
    ("train_on_pairs: a tuple of tensors", lambda: gmu.train_on_pairs(Z.fm, (X, X), n_steps=1), TypeError,
     r"pairs must be a ReflowPairs"),
    ("train_on_pairs: conditions of the wrong width",
     lambda: gmu.train_on_pairs(Z.radius, gmu.ReflowPairs(X, X, torch.zeros(4, 8)), n_steps=1), ValueError,
     r"pairs\.conditions must have shape \(4, 1\)"),
    ("train_on_pairs: a noise-predicting model", lambda: gmu.train_on_pairs(Z.diffusion, gmu.ReflowPairs(X, X)),
     TypeError, r"model must predict a velocity"),
    ("sample_times: misspelt how", lambda: training.sample_times(4, how="unifrom"), ValueError,
     r"how must be one of \['uniform', 'logit_normal'\], got 'unifrom'"),
    ("sample_times: a billion times", lambda: training.sample_times(10**9), ValueError,
     r"n must be an integer between 1 and 10000000, got 1000000000"),
    ("train: a noise-predicting model", lambda: gmu.train(Z.diffusion, Z.data, n_steps=1), TypeError,
     r"model must predict a velocity"),
    ("train: a one-hot model without labels", lambda: gmu.train(Z.onehot, Z.data, n_steps=1), ValueError,
     r"ConditionalVelocityField needs labels"),
    ("train: class labels for a radius model", lambda: gmu.train(Z.radius, Z.data, labels=Z.labels, n_steps=1),
     ValueError, r"labels are class indices for a one-hot model"),
    ("train: misspelt coupling", lambda: gmu.train(Z.fm, Z.data, n_steps=1, coupling="ot2"), ValueError,
     r"coupling must be one of .*'ot2'"),
    ("train: too many steps", lambda: gmu.train(Z.fm, Z.data, n_steps=10**9), ValueError,
     r"n_steps must be an integer between 1 and 10000000, got 1000000000"),
    ("train: progress a string", lambda: gmu.train(Z.fm, Z.data, n_steps=1, progress="yes"), TypeError,
     r"progress must be True, False or None, got 'yes'"),
    ("LiveTrainer: seed beyond torch's", lambda: live_training.LiveTrainer(Z.data, seed=2**70), ValueError,
     r"seed must be an integer between 0 and \d+, got 1180591620717411303424"),
    ("LiveTrainer: max_steps unbounded", lambda: live_training.LiveTrainer(Z.data, max_steps=10**12), ValueError,
     r"max_steps must be an integer between 1 and 10000000, got 1000000000000"),
    ("LiveTrainer: learning rate 2", lambda: live_training.LiveTrainer(Z.data, lr=2.0), ValueError,
     r"lr must be <= 1\.0, got 2\.0"),
    ("LiveTrainer: 3-D data", lambda: live_training.LiveTrainer(torch.zeros(5, 3)), ValueError,
     r"data must have shape \(N, 2\)"),
    ("LiveTrainer.configure: lr a string", lambda: Z.trainer.configure(lr="fast"), TypeError,
     r"lr must be a real number, got 'fast'"),
    ("LiveTrainer.configure: unknown coupling", lambda: Z.trainer.configure(coupling="sinkhorn"), ValueError,
     r"coupling must be one of .*'sinkhorn'"),
    ("LiveTrainer.step: beyond max_steps", lambda: Z.trainer.step(10**6), ValueError,
     r"n_steps must be an integer between 1 and 20000, got 1000000"),
    ("LiveTrainer.start: on_frame not callable", lambda: Z.trainer.start(on_frame=3), TypeError,
     r"on_frame must be callable or None, got 3"),
    # ---------------------------------------------------------------- marginal field, metrics
    ("RingMarginalField: zero std", lambda: marginal_field.RingMarginalField(std=0.0), ValueError,
     r"std must be > 0\.0, got 0\.0"),
    ("loss_floor: a million grid points a side",
     lambda: marginal_field.RingMarginalField().loss_floor(0.5, n_grid=10**6), ValueError,
     r"n_grid must be an integer between 2 and \d+, got 1000000"),
    ("average_loss_floor: misspelt time_sampling",
     lambda: marginal_field.RingMarginalField().average_loss_floor("unifrom"), ValueError,
     r"time_sampling must be one of \['uniform', 'logit_normal'\], got 'unifrom'"),
    ("average_loss_floor: a million nodes",
     lambda: marginal_field.RingMarginalField().average_loss_floor(n_times=10**6), ValueError,
     r"n_times must be an integer between 1 and \d+, got 1000000"),
    ("solve_ode: the exact field with 3-D points",
     lambda: gmu.solve_ode(marginal_field.RingMarginalField(), torch.zeros(4, 3)), ValueError,
     r"x0 has width 3.*RingMarginalField takes points of width 2"),
    ("ring_quality: 3-D samples", lambda: gmu.ring_quality(torch.zeros(5, 3)), ValueError,
     r"samples must have shape \(N, 2\)"),
    ("ring_quality: too many samples for exact W2", lambda: gmu.ring_quality(torch.zeros(20_000, 2)), ValueError,
     r"samples has 20000 points"),
    ("wasserstein2: clouds too large", lambda: gmu.wasserstein2(torch.zeros(20_000, 2), torch.zeros(20_000, 2)),
     ValueError, r"x has 20000 and y has 20000 points"),
    ("w2_floor: n_samples a list", lambda: gmu.w2_floor([500]), TypeError,
     r"n_samples must be an integer >= 1, got \[500\]"),
    ("w2_floor: n_reference zero", lambda: gmu.w2_floor(500, n_reference=0), ValueError,
     r"n_reference must be an integer between 1 and 10000, got 0"),
    ("off_mode_fraction: negative n_std", lambda: gmu.off_mode_fraction(X, n_std=-1.0), ValueError,
     r"n_std must be >= 0\.0, got -1\.0"),
    ("path_straightness: a single time point", lambda: gmu.path_straightness(torch.zeros(1, 5, 2)), ValueError,
     r"trajectory must hold at least 2 time points"),
    # ---------------------------------------------------------------- models, loaders, paths, couplings
    ("VelocityField: fractional hidden_dim", lambda: gmu.VelocityField(hidden_dim=64.0), TypeError,
     r"hidden_dim must be an integer >= 1, got 64\.0"),
    ("VelocityField: unknown activation", lambda: gmu.VelocityField(activation="gelu"), ValueError,
     r"activation must be one of .*'gelu'"),
    ("ConditionalVelocityField: no classes", lambda: gmu.ConditionalVelocityField(n_classes=0), ValueError,
     r"n_classes must be an integer between 1 and 4096, got 0"),
    ("ConditionalVelocityFieldRadius: zero embedding", lambda: gmu.ConditionalVelocityFieldRadius(radius_emb_dim=0),
     ValueError, r"radius_emb_dim must be an integer between 1 and 4096, got 0"),
    ("is_extrapolation: radius a string", lambda: Z.radius.is_extrapolation("3"), TypeError,
     r"radius must be a real number, got '3'"),
    ("class_code: label outside the classes", lambda: gmu.class_code(8, 8), ValueError,
     r"labels must be an integer between 0 and 7, got 8"),
    ("class_code: fractional labels", lambda: gmu.class_code([0.5], 8), TypeError,
     r"labels must hold whole-number class indices"),
    ("make_loader: batch_size zero", lambda: gmu.make_loader(Z.data, batch_size=0), ValueError,
     r"batch_size must be an integer between 1 and 10000000, got 0"),
    ("make_loader: shuffle a string", lambda: gmu.make_loader(Z.data, shuffle="yes"), TypeError,
     r"shuffle must be True or False, got 'yes'"),
    ("make_conditional_loader_onehot: labels beyond n_classes",
     lambda: gmu.make_conditional_loader_onehot(Z.data, Z.labels, n_classes=4), ValueError,
     r"labels must lie in \[0, 3\] for n_classes=4"),
    ("RandomBatches: conditions of other length",
     lambda: loaders.RandomBatches(Z.data, 4, conditions=torch.zeros(3, 1)), ValueError,
     r"conditions must have shape \(64, C\)"),
    ("interpolate: t of the wrong shape", lambda: gmu.interpolate(X, X, torch.zeros(2)), ValueError,
     r"t must be a number or have shape \(4, 1\)"),
    ("conditional_velocity: x0 a list", lambda: gmu.conditional_velocity([[0.0, 0.0]], X), TypeError,
     r"x0 and x1 must be torch.Tensors"),
    ("flow_matching_loss: a one-hot model without condition",
     lambda: gmu.flow_matching_loss(Z.onehot, X, X, torch.zeros(4, 1)), ValueError,
     r"ConditionalVelocityField needs condition=\(B, 8\)"),
    ("flow_matching_loss: a condition for an unconditional model",
     lambda: gmu.flow_matching_loss(Z.fm, X, X, torch.zeros(4, 1), gmu.class_code(0, 8)), ValueError,
     r"condition must be None for VelocityField"),
    ("flow_matching_loss: 3-D points", lambda: gmu.flow_matching_loss(Z.fm, torch.zeros(4, 3), torch.zeros(4, 3), 0.5),
     ValueError, r"x0 has width 3.*width 2"),
    ("minibatch_ot_coupling: a batch too large for exact OT",
     lambda: gmu.minibatch_ot_coupling(torch.zeros(20_000, 2), torch.zeros(20_000, 2)), ValueError,
     r"x0 has 20000 rows.*at most 10000"),
    ("blockwise_ot_coupling: zero block", lambda: couplings.blockwise_ot_coupling(0), ValueError,
     r"block_size must be an integer between 1 and 10000, got 0"),
    ("class_conditional_ot_coupling: labels of other length",
     lambda: gmu.class_conditional_ot_coupling(X, X, labels=torch.zeros(3)), ValueError,
     r"labels must have shape \(4,\) or \(4, C\)"),
    ("sample_base: unknown device", lambda: gmu.sample_base("gaussian", 4, device="tpu"), ValueError,
     r"device must be a device such as 'cpu'.*'tpu'"),
    ("create_ring_gaussians: no modes", lambda: gmu.create_ring_gaussians(10, n_modes=0), ValueError,
     r"n_modes must be an integer between 1 and 4096, got 0"),
    # ---------------------------------------------------------------- plotting, animation, uncertainty
    ("plot_samples: ax a string", lambda: gmu.plot_samples(X, ax="ax"), TypeError,
     r"ax must be a matplotlib Axes or None, got 'ax'"),
    ("plot_loss: window zero", lambda: gmu.plot_loss([1.0, 2.0], window=0), ValueError,
     r"window must be an integer >= 1, got 0"),
    ("velocity_on_grid: a noise-predicting model", lambda: plotting.velocity_on_grid(Z.diffusion, 0.5), TypeError,
     r"model must predict a velocity"),
    ("velocity_on_grid: negative limit", lambda: plotting.velocity_on_grid(Z.fm, 0.5, limit=-1.0), ValueError,
     r"limit must be > 0\.0, got -1\.0"),
    ("plot_velocity_field: unknown kind", lambda: gmu.plot_velocity_field(Z.fm, 0.5, kind="arrows"), ValueError,
     r"kind must be one of \['quiver', 'stream'\], got 'arrows'"),
    ("plot_velocity_field: grid of two arrays", lambda: gmu.plot_velocity_field(Z.fm, 0.5, grid=(1, 2)), ValueError,
     r"grid must be the four arrays \(xx, yy, u, v\) of velocity_on_grid"),
    ("plot_velocity_field: t a string with a grid", lambda: gmu.plot_velocity_field(Z.fm, "0.5", grid=Z.grid),
     TypeError, r"t must be a real number, got '0\.5'"),
    ("plot_field_error: field not callable", lambda: plotting.plot_field_error(Z.fm, "exact", 0.5), TypeError,
     r"field must be callable.*'exact'"),
    ("plot_trajectories: 3-D trajectory", lambda: gmu.plot_trajectories(torch.zeros(5, 4, 3)), ValueError,
     r"trajectory must have shape \(S \+ 1, B, 2\)"),
    ("plot_conditional_samples_continuous: three-number range",
     lambda: gmu.plot_conditional_samples_continuous({3.0: X}, trained_range=(1, 2, 3)), ValueError,
     r"trained_range must be \(low, high\), got shape \(3,\)"),
    ("animate_particles: trajectory a string", lambda: animation.animate_particles("path"), TypeError,
     r"trajectory must be a real-valued array or tensor, got 'path'"),
    ("animate_velocity_field: no frames", lambda: animation.animate_velocity_field(Z.fm, n_frames=0), ValueError,
     r"n_frames must be an integer between 1 and 500, got 0"),
    ("animate_velocity_field: times beyond 1", lambda: animation.animate_velocity_field(Z.fm, times=[0.0, 2.0]),
     ValueError, r"times must be at least one time in \[0, 1\], got values from 0\.0 to 2\.0"),
    ("over_seeds: seeds a number", lambda: uncertainty.over_seeds(lambda seed: 0.5, seeds=5), TypeError,
     r"seeds must be a list or tuple.*5"),
    ("share: a fraction above 1", lambda: uncertainty.share(1.5, 10), ValueError,
     r"fraction must be <= 1\.0, got 1\.5"),
    # ---------------------------------------------------------------- exercise checkers
    ("check_path: the student's point is NaN", lambda: checks.check_path(nan_like, nan_like), AssertionError,
     r"trig_point returned NaN or inf"),
    ("check_path: the student's function raises", lambda: checks.check_path(broken, broken),
     AssertionError, r"trig_point raised RuntimeError.*index 7"),
    ("check_path: the student's velocity has the wrong shape",
     lambda: checks.check_path(lambda x0, x1, t: torch.cos(torch.pi * t / 2) * x0 + torch.sin(torch.pi * t / 2) * x1,
                               lambda x0, x1, t: (x1 - x0)[:, :1]), AssertionError,
     r"trig_velocity returned the wrong shape"),
    ("check_loss: the student's loss is NaN",
     lambda: checks.check_loss(lambda model, x0, x1, t: torch.tensor(NAN, requires_grad=True)), AssertionError,
     r"fm_loss returned NaN or inf"),
    ("check_loss: the student's loss raises", lambda: checks.check_loss(broken), AssertionError,
     r"fm_loss raised RuntimeError"),
    ("check_euler: the student's path is NaN",
     lambda: checks.check_euler(lambda v, x0, times: torch.full((len(times), len(x0), 2), NAN)), AssertionError,
     r"euler_path returned NaN"),
    ("check_euler: the student's path raises", lambda: checks.check_euler(broken), AssertionError,
     r"euler_path raised RuntimeError"),
    ("check_kutta: the student's step raises", lambda: checks.check_kutta(broken, broken, 3.0), AssertionError,
     r"kutta_step raised RuntimeError"),
    ("check_marginal_velocity: the student's field is NaN", lambda: checks.check_marginal_velocity(nan_like),
     AssertionError, r"marginal_velocity returned NaN"),
    ("check_field_ends: the student's field is NaN", lambda: checks.check_field_ends(nan_like, nan_like, Z.fm),
     AssertionError, r"field_at_0 returned NaN"),
    ("check_conditional_sampling: the student's samples are NaN",
     lambda: checks.check_conditional_sampling(lambda m, mode, n, s, seed: torch.full((n, 2), NAN), Z.onehot,
                                               modes=(0,), n_steps=2), AssertionError,
     r"sample_mode returned NaN"),
    ("check_step_study: the student's estimate is NaN",
     lambda: checks.check_step_study(lambda m, n, s, k: Estimate(NAN, NAN, NAN, 2, "seeds"), 8, Z.fm, (8,), (0, 1), 50),
     AssertionError, r"off_mode_over_seeds returned NaN"),
    ("check_one_step: the student's share is NaN", lambda: checks.check_one_step(one_step, NAN, Z.fm),
     AssertionError, r"ONE_STEP_OFF_MODE is not a fraction"),
    ("check_trained_model: the student's model gives NaN", lambda: checks.check_trained_model(Z.nan_model, [1.0]),
     AssertionError, r"the trained model's samples are NaN"),
    ("check_encode: the student's encoder raises", lambda: checks.check_encode(broken, "b", Z.fm, n_steps=2),
     AssertionError, r"encode raised RuntimeError"),
    ("check_guidance: the student's builder raises", lambda: checks.check_guidance(broken, broken, 0.1, "a"),
     AssertionError, r"guided_field raised RuntimeError"),
    ("check_extrapolation: the student's range raises",
     lambda: checks.check_extrapolation(broken, lambda r, lo, hi: [], [3.0, 3.1], [3.0]), AssertionError,
     r"seen_range raised RuntimeError"),
]


class TookTooLong(Exception):
    pass


def _alarm(signum, frame):
    raise TookTooLong(f"no answer within {TIME_LIMIT} s")


def raising_file(error: BaseException) -> str:
    """The file of the frame that raised ``error`` (the innermost frame of its traceback)."""
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename


def test_the_table_is_large_and_its_names_are_unique():
    assert len(CASES) >= 70
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.fixture
def registries_kept():
    """A case that wrongly succeeds must not leave a broken entry in a registry for later tests."""
    tables = (gmu.BASES, gmu.SOLVERS, gmu.COUPLINGS, gmu.MODEL_CLASSES, gmu.MODEL_KINDS)
    saved = [dict(table) for table in tables]
    yield
    for table, before in zip(tables, saved):
        table.clear()
        table.update(before)


@pytest.mark.usefixtures("registries_kept")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("call, error, pattern", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_refused_at_the_door(call, error, pattern):
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, 2 * TIME_LIMIT)        # stops a call that would run for hours
    start = time.perf_counter()
    try:
        with pytest.raises(error) as caught:
            call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    message = str(caught.value)
    assert re.search(pattern, message, flags=re.DOTALL), f"{type(caught.value).__name__}: {message}"
    assert seconds <= TIME_LIMIT, f"refused after {seconds:.1f} s"
    where = Path(raising_file(caught.value)).resolve()
    assert PACKAGE in where.parents, f"raised in {where}, not in the package: {message}"


# ---------------------------------------------------------------- extrapolation warnings

def warnings_of(call) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, ExtrapolationWarning)]


@pytest.mark.parametrize("call", [
    lambda: gmu.generate(Z.radius, 20, n_steps=2, condition=torch.tensor([40.0])),
    lambda: gmu.solve_ode(Z.radius, X, n_steps=2, condition=torch.tensor([[3.0], [3.0], [3.0], [40.0]])),
    lambda: gmu.reflow_pairs(Z.radius, 4, n_steps=2, conditions=torch.tensor([40.0])),
], ids=["generate", "solve_ode, one row far out", "reflow_pairs"])
def test_a_radius_far_outside_the_trained_range_warns_once_per_call(call):
    found = warnings_of(call)
    assert len(found) == 1, [str(w.message) for w in found]
    message = str(found[0].message)
    assert "condition" in message and "2.30" in message and "3.70" in message and "40.00" in message, message
    assert found[0].filename == __file__, found[0].filename                            # points at the caller


def test_radii_inside_the_trained_range_do_not_warn():
    assert warnings_of(lambda: gmu.generate(Z.radius, 20, n_steps=2, condition=torch.tensor([3.0]))) == []
    fresh = small(gmu.ConditionalVelocityFieldRadius)                 # range unknown: no claim
    assert warnings_of(lambda: gmu.generate(fresh, 20, n_steps=2, condition=torch.tensor([40.0]))) == []


def test_a_diffusion_model_built_from_numpy_numbers_saves_and_loads(tmp_path):
    """Its config holds plain floats, so the checkpoint it writes can be read back."""
    model = diffusion.DiffusionModel(hidden_dim=np.int64(8), beta_min=np.float64(0.1), beta_max=np.float32(20.0))
    loaded, _ = gmu.load_checkpoint(gmu.save_checkpoint(model, tmp_path / "diffusion.pt"))
    assert loaded.config == {"time_emb_dim": 16, "hidden_dim": 8, "beta_min": 0.1, "beta_max": 20.0}
