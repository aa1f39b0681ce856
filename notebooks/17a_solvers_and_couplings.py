# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation,-kernelspec
# ---

# %% [markdown]
# # 17a Fewer steps, straighter paths: solvers, couplings and reflow
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/flow-matching-suite/flow-matching-notebooks/blob/main/notebooks/17a_solvers_and_couplings.ipynb)
#
# The chapter samples with 100 Euler steps and says in passing that flow matching needs only "a
# few" ODE steps, and that better pairings of noise with data or a higher-order solver such as RK4
# would help. This notebook puts numbers on those sentences, on the ring of 8 Gaussians, with
# models trained to convergence and shipped with the package (8000 steps of batch 512 each):
#
# 1. **Solvers.** One well-trained model, five ODE solvers, sample quality against the number of
#    network evaluations (NFE), the currency of sampling cost.
# 2. **Couplings.** Random pairs of noise and data (the chapter) against pairs chosen by optimal
#    transport (OT) inside blocks of a batch, and why plain OT breaks the one-hot model.
# 3. **Reflow.** A model retrained on the pairs its teacher's ODE produces, sampled in one step.
# 4. **A widget** to try any solver and budget on these models.
#
# Every `##` section starts from the header cell below alone.

# %% tags=["colab"]
import subprocess
import sys

if "google.colab" in sys.modules:   # on Colab: install the package these notebooks import
    package = "gen_models_utilities @ git+https://github.com/flow-matching-suite/flow-matching-notebooks"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from gen_models_utilities import (ConditionalVelocityField, VelocityField, create_ring_gaussians, device,
                                  path_straightness, plot_pairs, plot_samples, plot_trajectories, sample_base,
                                  set_seed, train, use_book_style)
from gen_models_utilities import couplings, pretrained, reflow, solvers, widgets
from gen_models_utilities.data import RING_RADIUS, RING_STD
from gen_models_utilities.metrics import distance_to_nearest_mode, off_mode_limit, reference_data, ring_quality

torch.set_num_threads(1)   # tiny networks: one thread is fastest and gives the same numbers everywhere
set_seed(0)
use_book_style()
print(f"device: {device}")

N_EVAL = 500                                   # samples scored per setting
REFERENCE = reference_data()                   # the fixed draw of the ring every score compares with
X0_EVAL = sample_base("gaussian", N_EVAL, seed=1)    # every solve below starts from these base points


def shipped(name):
    """A shipped model trained from the Gaussian base: 'fm' (independent pairs), 'fm_ot_block128', 'fm_reflow', ..."""
    return pretrained.load_pretrained(name, "gaussian")[0]


def solve(model, method, nfe, x0=X0_EVAL, **options):
    """Samples from ``x0`` with ``method`` in ``nfe`` network evaluations (fixed steps)."""
    return solvers.solve_ode(model, x0, n_steps=solvers.SOLVERS[method].steps_for_budget(nfe), method=method,
                             **options).x


# %% [markdown]
# ## 17a.1 The yardstick
#
# `ring_quality` measures samples three ways, because no single number separates good from bad:
# the 2-Wasserstein distance (W2) to a fixed reference draw of the ring beside what fresh real
# data of the same size scores (the *floor* ± its spread: even perfect samples do not score 0);
# the share of samples **off every mode** (more than 3 standard deviations from all 8 centres;
# real data has 1.1% there), which sees blur that W2 on a few hundred points misses; and the
# count per mode, which sees a missing mode. Its verdict is "as good as data" only when none of
# the three differs from real data. Here is real data itself, and the chapter's model solved with
# 100 Euler steps:

# %%
print("fresh data :", ring_quality(create_ring_gaussians(N_EVAL, seed=7)[0]))
print("fm, 100 Eu :", ring_quality(solve(shipped("fm"), "euler", 100)))

# %% [markdown]
# ## 17a.2 One model, five solvers
#
# The model is the chapter's (independent pairs, Gaussian base), trained to convergence. The
# fixed-step solvers differ in how many times one step asks the network for a velocity: Euler
# once, midpoint and Heun twice, RK4 four times. Two of them, as the package runs them:

# %%
print(inspect.getsource(solvers.midpoint_step))
print(inspect.getsource(solvers.heun_step))
print("evaluations per step:", {name: solvers.SOLVERS[name].evaluations for name in solvers.solver_names(adaptive=False)})

# %% [markdown]
# `solver_sweep` solves from the same 500 base points with every registered method at each budget
# of network evaluations (a budget smaller than one step is skipped: RK4 cannot step with 2);
# `dopri5` (torchdiffeq) instead adapts its step size to a tolerance and reports the NFE it chose.

# %%
model = shipped("fm")
BUDGETS = (1, 2, 4, 8, 32)
sweep = {method: [(s.nfe, ring_quality(s.x)) for s in solutions]
         for method, solutions in solvers.solver_sweep(model, X0_EVAL, BUDGETS).items()}
sweep["dopri5"] = [(s.nfe, ring_quality(s.x)) for s in
                   (solvers.solve_ode(model, X0_EVAL, method="dopri5", rtol=tol, atol=tol) for tol in (1e-2, 1e-4))]
print(f"{'':9s}" + "".join(f"{'NFE':>5s} {'W2':>5s} {'off':>6s} |" for _ in range(2)))
for method, rows in sweep.items():
    print(f"{method:9s}" + "  ".join(f"{nfe:4d}  {q.w2:4.2f} {100 * q.off_mode_fraction:5.1f}% "
                                     f"{'ok' if q.as_good_as_data else '--'}" for nfe, q in rows))
print(f"data floor W2 {sweep['euler'][0][1].floor:.2f} ± {sweep['euler'][0][1].floor_spread:.2f}; "
      "ok = as good as data")

# %% [markdown]
# In the plots, look at how fast each line falls towards the data's level (grey) as the budget
# grows, and where it flattens: once the solver's error is below the model's own, more steps buy
# nothing.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for method, rows in sweep.items():
    nfe = [n for n, _ in rows]
    style = dict(marker="o", label=method, ls="--" if method == "dopri5" else "-")
    axes[0].plot(nfe, [q.w2 for _, q in rows], **style)
    axes[1].plot(nfe, [100 * q.off_mode_fraction for _, q in rows], **style)
floor = sweep["euler"][0][1]
axes[0].axhspan(floor.floor - floor.floor_spread, floor.floor + floor.floor_spread, color="0.85")
axes[1].axhline(1.1, color="0.5", lw=1)
for ax, label in zip(axes, ("W2 to the reference", "% of samples off every mode")):
    ax.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", ylabel=label)
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# With the chapter's random pairs **one or two evaluations are far from enough** for any solver.
# One Euler step shows why most plainly: at t = 0 a base point tells nothing about its partner,
# so the field there is the average direction E[x1] - x0 = -x0, and the step carries every sample
# to the mean of the data, the empty centre of the ring (all of them off every mode). Midpoint
# and Heun spend their two evaluations on one big step. W2 reaches the data's band within a few
# evaluations, but the off-mode share falls much more slowly: samples still on their way between
# the modes are what few steps leave behind. The table's verdict turns "ok" from 8 evaluations
# with the second- and fourth-order methods and only at 32 with Euler. dopri5 picks its own steps
# and spends 32 and 38 evaluations at tolerances 1e-2 and 1e-4.
#
# Cost is network evaluations: the solve itself, timed without the scoring, grows with the NFE
# whatever the solver does with them.

# %% tags=["nbval-ignore-output"]
model = shipped("fm")
for method in solvers.solver_names(adaptive=False):
    cells = []
    for nfe in (b for b in (4, 8, 32) if solvers.SOLVERS[method].steps_for_budget(b) > 0):
        start = time.perf_counter()
        solve(model, method, nfe)
        cells.append(f"NFE {nfe:2d}: {1000 * (time.perf_counter() - start):5.1f} ms")
    print(f"{method:9s}" + "  ".join(cells))

# %% [markdown]
# ## 17a.3 Couplings: which noise goes with which data point
#
# Training pairs each data point x1 of a batch with a base point x0. The chapter draws them
# independently, so the straight lines x0 -> x1 cross everywhere, and the field the network learns
# (their average) curves. **Minibatch optimal transport** re-pairs a batch so that the total
# squared length of the lines is as small as possible: an exact assignment problem, solved with
# POT's network simplex. The package's version:

# %%
print(inspect.getsource(couplings.ot_permutation))

# %% [markdown]
# Below, one batch of 256 points paired both ways; the lines join the first 40 pairs. Look for
# how the optimal pairs stay short and hardly cross.

# %%
x1_batch = torch.from_numpy(create_ring_gaussians(256, seed=3)[0])
x0_batch = sample_base("gaussian", 256, seed=2)
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, name in zip(axes, ("independent", "ot")):
    paired = couplings.COUPLINGS[name].pair(x0_batch, x1_batch)
    plot_pairs(paired, x1_batch, n_lines=40, ax=ax,
               title=f"{name} pairs: mean squared length {(paired - x1_batch).pow(2).sum(1).mean():.1f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# The OT pairs are much shorter (the titles give the mean squared length) and run outwards, from
# the noise that lies towards a mode to that mode. Exact OT's cost grows faster than the square of the batch, so the
# package also pairs inside **blocks** of a batch: `ot_block128` solves a batch of 512 as four
# independent OT problems of 128 points. Training with it is one argument of `train`; a short
# run shows the mechanics (the models below were trained the same way for 8000 steps):

# %%
torch.manual_seed(0)
demo = train(VelocityField(), create_ring_gaussians(8000, seed=0)[0], n_steps=100, batch_size=512,
             coupling="ot_block128", seed=0, progress=False)
print(f"coupling {demo.recipe['coupling']}: loss {np.mean(demo.losses[:10]):.2f} (first 10 steps) -> "
      f"{np.mean(demo.losses[-10:]):.2f} (last 10)")

# %% [markdown]
# How much straighter do OT pairs make the learned paths, and does a smaller block straighten as
# well? For each shipped model: the straightness of its accurate paths (chord over path length
# along RK4 solves, 1 = straight) and the quality of a single Euler step and of two.

# %%
OT_MODELS = {"independent": "fm", "OT, blocks of 64": "fm_ot_block64", "OT, blocks of 128": "fm_ot_block128",
             "OT, blocks of 256": "fm_ot_block256"}
for label, name in OT_MODELS.items():
    model = shipped(name)
    paths = solvers.solve_ode(model, X0_EVAL, n_steps=20, method="rk4", return_trajectory=True).trajectory
    print(f"{label:18s} straightness {path_straightness(paths):.3f}")
    for nfe in (1, 2):
        print(f"{'':6s}{nfe} Euler step{'s' if nfe > 1 else ' '}: {ring_quality(solve(model, 'euler', nfe))}")

# %% [markdown]
# Every OT model has nearly straight paths, whatever the block: straightness hardly changes from
# 64 to 256 points. A single Euler step of any of them lands on the ring (W2 within the data's
# band), where the independent model's lands in the centre; larger blocks leave fewer samples
# between the modes after that one step. The off-mode share is still well above the data's
# 1.1%, so how many Euler steps does each need before its samples are as good as data (the
# yardstick's verdict), trying 1, 2, 4, ... 64?

# %%
def euler_steps_to_quality(model, budgets=(1, 2, 4, 8, 16, 32, 64)):
    """The fewest Euler steps (from ``budgets``) whose samples are as good as data, or None."""
    return next((n for n in budgets if ring_quality(solve(model, "euler", n)).as_good_as_data), None)


for label, name in OT_MODELS.items():
    print(f"{label:18s} {euler_steps_to_quality(shipped(name))} Euler steps")
print(f"the verdict allows at most {100 * off_mode_limit(N_EVAL):.1f}% off every mode at {N_EVAL} samples")

# %% [markdown]
# Blocks of 64 and 128 halve the steps the independent model needs; blocks of 256 do not, here.
# The verdict is strict (it allows little more off-mode mass than real data shows), and the last few
# stragglers between the modes are what separate these models, not the shape of their paths.
#
# The paths of the independent model and of one OT model, side by side: look for how the OT
# paths run almost straight from each base point to a mode, where the independent ones bend on
# their way and turn towards their mode late.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, label in zip(axes, ("independent", "OT, blocks of 128")):
    paths = solvers.solve_ode(shipped(OT_MODELS[label]), X0_EVAL[:300], n_steps=20, method="rk4",
                              return_trajectory=True).trajectory
    plot_trajectories(paths, ax=ax, n_paths=150, data=REFERENCE,
                      title=f"{label}: straightness {path_straightness(paths):.3f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Conditional models: OT only within a class
#
# For the one-hot model each data point comes with its class. Plain minibatch OT ignores the class
# and hands every class the noise that lies **towards** it. Then the class is predictable from the
# start point alone: at training time the code adds little that x0 does not already tell, so the
# network has little reason to use it. At sampling time, though, x0 is drawn without regard to the
# class requested. Below: how often the mode nearest in angle to x0 is its partner's class, for
# one batch paired three ways (chance is one in eight).

# %%
def class_sector(x0):
    """The mode each base point x0 (B, 2) points at in angle (mode k sits at angle 2 pi k / 8): (B,)."""
    return torch.remainder(torch.round(torch.atan2(x0[:, 1], x0[:, 0]) / (2 * np.pi / 8)), 8).long()


def class_from_start(x0, classes):
    """Share of pairs whose x0 points (in angle) at the mode of its partner's class."""
    return float((class_sector(x0) == classes).float().mean())


points, classes = create_ring_gaussians(512, seed=4)
x1, classes = torch.from_numpy(points), torch.from_numpy(classes).long()
x0 = sample_base("gaussian", 512, seed=5)
print(f"chance 1/8 = {1 / 8:.3f}")
for name in ("independent", "ot", "class_ot"):
    paired = couplings.COUPLINGS[name].pair(x0, x1, classes)
    print(f"{name:12s} class predictable from x0 for {class_from_start(paired, classes):.3f} of the pairs")

# %% [markdown]
# `class_ot` solves the OT problem separately inside each class, so every class keeps noise drawn
# without regard to it. Two short live runs (400 steps) of the one-hot model, one per coupling,
# scored on class-balanced samples (RK4, 8 steps) by the share that lands on the *requested* mode:

# %%
data, data_labels = create_ring_gaussians(8000, seed=0)
codes = torch.eye(8)[torch.arange(N_EVAL) % 8]                 # classes 0..7 in turn
for name in ("ot", "class_ot"):
    torch.manual_seed(0)
    onehot = ConditionalVelocityField(n_classes=8)
    train(onehot, data, labels=data_labels, n_steps=400, batch_size=256, lr=2e-3, coupling=name, seed=0,
          progress=False)
    distance, nearest = distance_to_nearest_mode(solve(onehot, "rk4", 32, condition=codes))
    on_mode = distance <= 0.75
    requested = np.mean(on_mode & (nearest == codes.argmax(1).numpy()))
    pointed = np.mean(on_mode & (nearest == class_sector(X0_EVAL).numpy()))
    print(f"{name:9s} {100 * requested:5.1f}% on the requested mode, {100 * pointed:5.1f}% on the mode x0 "
          f"points at, {100 * np.mean(on_mode):5.1f}% on some mode")

# %% [markdown]
# With plain OT, under a third of the samples reach the requested mode and most reach no mode at
# all; nor do they simply follow their start point (the third column is near chance). The network
# was trained only on codes that came with noise lying towards their mode; asked for a mode with
# noise lying anywhere, it meets combinations it never saw, and its paths end between the modes.
# Within-class OT keeps the code meaningful. (Short runs; this cell needs only the one above.)
#
# ## 17a.4 Reflow: straighten a trained model
#
# Rectified flow (Liu et al., 2022) needs no OT solver. Take a trained model (the teacher),
# carry many base points x0 to their end points x1 with an accurate ODE solve, and train on
# exactly those pairs with the straight-line loss. The shipped `fm_reflow` is the shipped
# `fm` reflowed once: 32000 pairs from its RK4 solve (25 steps), 8000 training steps started
# from the teacher's weights.

# %%
print(inspect.getsource(reflow.reflow_pairs).split('"""')[0] + "...")
print(pretrained.load_pretrained("fm_reflow", "gaussian")[1]["recipe"])

# %% [markdown]
# Why this straightens: two ODE trajectories never cross (the velocity at a point is one vector),
# but the straight **chords** between their end points can. Reflow learns the field of those
# chords, which is straighter than the teacher's paths but not straight wherever chords cross;
# paths become straight only in the limit of repeated reflow. How often do chords cross? Among 300
# pairs, the share of pairs of chords that intersect:

# %%
def crossing_share(x0, x1):
    """Share of pairs of segments x0[i] -> x1[i], x0[j] -> x1[j] (i < j) that intersect."""
    def side(a, b, c):                             # sign of the turn a -> b -> c, every (i, j) at once
        return torch.sign((b[:, None, 0] - a[:, None, 0]) * (c[None, :, 1] - a[:, None, 1])
                          - (b[:, None, 1] - a[:, None, 1]) * (c[None, :, 0] - a[:, None, 0]))
    cross = (side(x0, x1, x0) != side(x0, x1, x1)) & (side(x0, x1, x0).T != side(x0, x1, x1).T)
    return float(cross.triu(1).sum() / (len(x0) * (len(x0) - 1) / 2))


teacher = shipped("fm")
x0 = sample_base("gaussian", 300, seed=6)
x1_teacher = solvers.solve_ode(teacher, x0, n_steps=25, method="rk4").x
print(f"independent pairs         {crossing_share(x0, torch.from_numpy(create_ring_gaussians(300, seed=6)[0])):.3f}")
print(f"teacher's ODE end points  {crossing_share(x0, x1_teacher):.3f}")

# %% [markdown]
# Under 1% of the chords between the teacher's end points cross, against a quarter of the random
# pairs: few, but not none. Now the one-step sampler and
# the paths, teacher against reflowed model:

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
for ax, name in zip(axes[:2], ("fm", "fm_reflow")):
    plot_samples(solve(shipped(name), "euler", 1), data=REFERENCE, ax=ax, title=f"{name}: 1 Euler step")
paths = solvers.solve_ode(shipped("fm_reflow"), X0_EVAL[:300], n_steps=20, method="rk4",
                          return_trajectory=True).trajectory
plot_trajectories(paths, ax=axes[2], n_paths=150, data=REFERENCE,
                  title=f"fm_reflow paths: straightness {path_straightness(paths):.3f}")
fig.tight_layout()
plt.show()
for name in ("fm", "fm_reflow"):
    for nfe in (1, 2, 100):
        print(f"{name:10s} {nfe:3d} Euler steps: {ring_quality(solve(shipped(name), 'euler', nfe))}")

# %% [markdown]
# One Euler step of the reflowed model lands on the ring, where the teacher's lands in the centre.
# But read the off-mode column: the reflowed model is not as good as data even with 100 steps. A
# reflowed model **inherits its teacher's errors** (its targets are the teacher's samples, not
# data) and adds the error of its own regression: where chords cross, the straight-line loss
# averages them again, and the one-step samples fall between the modes there. How far are its
# one-step samples from the end points of the teacher's accurate solve, the targets it was
# trained on? (x0 and the teacher's end points come from the cell before the last.)

# %%
student = solvers.solve_ode(shipped("fm_reflow"), x0, n_steps=1).x
print(f"mean distance, reflow 1 step to the teacher's end point: {(student - x1_teacher).norm(dim=1).mean():.3f}")
print(f"mean distance between neighbouring modes of the ring:   {2 * RING_RADIUS * np.sin(np.pi / 8):.3f}")
print(f"a sample counts as off every mode beyond 3 std = {3 * RING_STD:.2f} from its centre")

# %% [markdown]
# The student lands close to its targets on average, far closer than the distance between modes,
# yet that small error is enough to push a few per cent of samples past 3 std from every mode.
#
# ## 17a.5 Try it: solver, budget and model
#
# Pick a model by how it was trained, a solver and a budget of network evaluations. Left: 500
# samples; right: the path each solver step took (coloured) over the accurate path (grey). With
# curved paths the coloured steps cut corners; after OT or reflow they lie close to the grey lines.
# First a static picture for readers without a kernel: each model with 1, 2 and 4 Euler steps.

# %%
MODELS = {"independent": "fm", "OT, blocks of 128": "fm_ot_block128", "reflow": "fm_reflow"}
fig, axes = plt.subplots(len(MODELS), 3, figsize=(12, 4 * len(MODELS)))
for row, (label, name) in zip(axes, MODELS.items()):
    for ax, nfe in zip(row, (1, 2, 4)):
        plot_samples(solve(shipped(name), "euler", nfe), data=REFERENCE, ax=ax, title=f"{label}, {nfe} Euler")
fig.tight_layout()
plt.show()

# %% [markdown]
# The independent model goes from the centre (1 step) through a blurred ring (2) to the modes (4).
# The OT and reflowed models are on the ring from the first step and tighten onto the modes with
# more steps; the stragglers left between the modes are what the off-mode share counts.

# %% tags=["nbval-ignore-output"]
explorer = widgets.few_step_explorer({label: shipped(name) for label, name in MODELS.items()},
                                     method="euler", nfe=1, data=REFERENCE)
explorer

# %% [markdown]
# To see a coupling at work during training, press **Start**: a fresh network trains live with
# minibatch OT pairs (switch the coupling to compare with independent pairs). The middle panel
# samples with only 8 Euler steps from the same noise every frame.

# %% tags=["nbval-ignore-output"]
live = widgets.training_explorer(coupling="minibatch OT", batch_size=256)
live

# %% [markdown]
# The same trainer after 300 steps, for readers without a kernel:

# %% tags=["nbval-ignore-output"]
live.train_steps(300)
fig, text = widgets.draw_training(live.trainer, t=0.5)
print(text)
fig.set_dpi(48)                               # a small picture: the notebook stays light
fig

# %% [markdown]
# ## 17a.6 Summary
#
# * Sampling cost is network evaluations. With the chapter's random pairs no solver gets close to
#   the data with one or two evaluations: one Euler step carries every sample to the centre.
# * Straighter paths are worth more than a better solver at one or two steps. Minibatch OT pairs,
#   even inside blocks of 64 points, make the learned paths nearly straight: one Euler step
#   brings the samples to the ring instead of the centre. Being as good as data still takes
#   8 or more steps, because of the few samples left between the modes.
# * Reflow straightens a trained model without an OT solver, as far as its teacher's chords do
#   not cross. It inherits the teacher's errors and adds its own: here its samples stay short of
#   the teacher's accurate solve.
# * For conditional models OT must stay within each class: plain OT makes the class predictable
#   from the noise, and samples asked for a class with noise drawn anywhere miss their mode.
