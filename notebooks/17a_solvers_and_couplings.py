# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation,-kernelspec
# ---

# %% [markdown]
# # 17a Fewer steps, straighter paths: solvers, couplings and reflow
#
# The chapter samples with 100 Euler steps and says in passing that flow matching needs only "a
# few" ODE steps, and that better pairings of noise with data or a higher-order solver such as RK4
# would help. This notebook puts numbers on those sentences, on the ring of 8 Gaussians:
#
# 1. **Solvers.** One trained model, five ODE solvers, sample quality against the number of
#    network evaluations (NFE), the currency of sampling cost.
# 2. **Couplings.** Random pairs of noise and data (the chapter) against pairs chosen by optimal
#    transport inside each batch, and, for the one-hot model, optimal transport within each class.
# 3. **Reflow.** Retrain a model on the pairs it produces itself, and sample in a single step.
# 4. **A widget** to try any solver, budget and coupling on the models trained here.
#
# Everything runs on one CPU thread from fixed seeds. Cells that print wall-clock times are
# excluded from the output comparison of the tests; every other number is deterministic.

# %%
import copy
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from gen_models_utilities import (ConditionalVelocityField, VelocityField, create_ring_gaussians, device,
                                  off_mode_fraction, path_straightness, plot_conditional_samples_discrete,
                                  plot_pairs, plot_samples,
                                  plot_trajectories, sample_base, set_seed, train, use_book_style,
                                  w2_floor, wasserstein2)
from gen_models_utilities import couplings, reflow, solvers, widgets
from gen_models_utilities.metrics import distance_to_nearest_mode

torch.set_num_threads(1)   # tiny networks: one thread is fastest and gives the same numbers everywhere
set_seed(0)
use_book_style()
print(f"device: {device}")
notebook_start = time.perf_counter()

# %% [markdown]
# ## The yardstick
#
# Quality is the **2-Wasserstein distance (W2)** from 1000 generated samples to 1000 fresh points
# of the ring, computed exactly with POT. Even a perfect model does not score zero: two independent
# draws of 1000 real points are themselves some distance apart. That **floor** fluctuates from draw
# to draw, so we average it over three pairs of seeds, at the same size of 1000 points, and report
# every W2 as a multiple of it: 1.0x means "as close as real data gets". We also count the share
# of samples **off every mode** (more than 3 standard deviations from all 8 centres); real data
# has about 1.1% there.

# %%
N_EVAL = 1000
data, labels = create_ring_gaussians(8000, seed=0)          # training set
reference, reference_labels = create_ring_gaussians(N_EVAL, seed=12345)   # fresh points to score against
floors = [w2_floor(N_EVAL, seed=s) for s in (10, 20, 30)]     # data vs data, three seed pairs
FLOOR = float(np.mean(floors))
print(f"W2 floor at {N_EVAL} points: {', '.join(f'{f:.3f}' for f in floors)} -> mean {FLOOR:.3f}")

def quality(samples):
    """(W2 to fresh data as a multiple of the floor, share of samples off every mode)."""
    return wasserstein2(samples, reference) / FLOOR, off_mode_fraction(samples)

x0_eval = sample_base("gaussian", N_EVAL, seed=1)            # every solve below starts here
scores = {}                                                  # (model name, method, NFE) -> quality

def score(name, model, method, nfe):
    """Quality of ``model`` solved from x0_eval with ``method`` in ``nfe`` evaluations (fixed steps)."""
    if (name, method, nfe) not in scores:
        x = solvers.solve_ode(model, x0_eval, n_steps=nfe // solvers.SOLVERS[method].evaluations, method=method).x
        scores[name, method, nfe] = quality(x)
    return scores[name, method, nfe]


# %% [markdown]
# ## 1. One model, five solvers
#
# First a model trained as in the chapter (independent pairs, Gaussian base), with the package's
# `train` (800 steps of batch 256, cosine learning-rate decay).

# %%
RECIPE = dict(batch_size=256, lr=2e-3, progress=False)
torch.manual_seed(0)                                          # initial weights
model_independent = VelocityField()
run_independent = train(model_independent, data, n_steps=800, seed=0, **RECIPE)
print(f"final loss (mean of the last 100 steps): {np.mean(run_independent.losses[-100:]):.2f}")

# %% [markdown]
# The four fixed-step solvers differ in how many times they ask the network for a velocity within
# one step: Euler once, midpoint and Heun twice, RK4 four times. Here are two of them, as the
# package runs them; `dopri5` (from torchdiffeq) instead adapts its step size to a tolerance.

# %%
print(inspect.getsource(solvers.midpoint_step))
print(inspect.getsource(solvers.heun_step))
print("evaluations per step:", {name: solver.evaluations for name, solver in solvers.SOLVERS.items()})

# %% [markdown]
# Each solver gets budgets of 1 to 100 network evaluations (a budget smaller than one step is
# skipped: RK4 cannot take a step with 2 evaluations). Every solve starts from the same 1000 base
# points. For dopri5 we set tolerances and record the NFE it chose. (The timing includes scoring.)

# %%
BUDGETS = (1, 2, 4, 8, 16, 64)
sweep = {}                                   # method -> list of (nfe, W2 ratio, off-mode, seconds)
for method, solver in solvers.SOLVERS.items():                # every registered fixed-step method
    sweep[method] = []
    for nfe in (b for b in BUDGETS if b >= solver.evaluations):
        start = time.perf_counter()
        sweep[method].append((nfe, *score("independent", model_independent, method, nfe), time.perf_counter() - start))
sweep["dopri5"] = []
for tolerance in (1e-1, 1e-2, 1e-3):
    start = time.perf_counter()
    solution = solvers.solve_ode(model_independent, x0_eval, method="dopri5", rtol=tolerance, atol=tolerance)
    sweep["dopri5"].append((solution.nfe, *quality(solution.x), time.perf_counter() - start))
print("W2 to fresh data / floor")
for method, rows in sweep.items():
    print(f"{method:8s} " + "  ".join(f"NFE {nfe:3d}: {ratio:4.1f}x" for nfe, ratio, _, _ in rows))
print("% of samples off every mode")
for method, rows in sweep.items():
    print(f"{method:8s} " + "  ".join(f"NFE {nfe:3d}: {100 * off:4.0f}%" for nfe, _, off, _ in rows))

# %% tags=["nbval-ignore-output"]
for method, rows in sweep.items():
    print(f"{method:8s} " + "  ".join(f"NFE {nfe:3d}: {1000 * sec:5.1f} ms" for nfe, _, _, sec in rows))

# %% [markdown]
# In the plots, look for how fast each line falls towards 1.0x as the budget grows, and where it
# flattens: once the solver error is below the model's own error, more steps buy nothing.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for method, rows in sweep.items():
    nfe, ratio, off, sec = map(np.array, zip(*rows))
    style = dict(marker="o", label=method, ls="--" if method == "dopri5" else "-")
    axes[0].plot(nfe, ratio, **style)
    axes[1].plot(nfe, 100 * off, **style)
    axes[2].plot(nfe, 1000 * sec, **style)
for ax, label in zip(axes, ("W2 to fresh data / floor", "% of samples off every mode", "time for 1000 samples (ms)")):
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel(label)
axes[0].axhline(1.0, color="0.3", lw=0.8)
axes[0].axhline(1.5, color="0.3", lw=0.8, ls=":")
axes[1].axhline(1.1, color="0.3", lw=0.8)
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# With the chapter's random pairs, **one or two evaluations are far from enough** for any solver:
# the learned field bends. One Euler step shows why most plainly: at t = 0 a base point tells
# nothing about its partner, so the field there is the average direction E[x1] - x0 = -x0, and
# the step carries every sample to the mean of the data, the empty centre of the ring. Midpoint and Heun
# are *worse* than Euler at 2 NFE, since they spend both evaluations on one big step. From about
# 4 to 8 evaluations on, every solver is close to the model's own quality; dopri5, which picks
# its own steps, spends more evaluations than needed for this smooth field. The time taken grows in proportion to the NFE: the network evaluations are the
# cost, whatever the solver does with them.
#
# ## 2. Couplings: which noise goes with which data point
#
# Training pairs each data point x1 of a batch with a base point x0. The chapter draws them
# independently, so the straight lines x0 -> x1 cross each other everywhere, and the field the
# network learns (their average) curves. **Minibatch optimal transport** re-pairs each batch so the
# total squared length of the lines is as small as possible: an exact assignment problem, solved
# with POT's network simplex. The package's version:

# %%
print(inspect.getsource(couplings.ot_permutation))

# %% [markdown]
# Below, the same batch of 256 points paired both ways; the dashed lines join the first 40 pairs.
# Look at how the optimal pairs stay short and hardly cross.

# %%
x1_batch = torch.from_numpy(data[:256])
x0_batch = sample_base("gaussian", 256, seed=2)
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
plot_pairs(couplings.independent_coupling(x0_batch, x1_batch), x1_batch, n_lines=40, ax=axes[0],
           title="independent pairs (the chapter)")
plot_pairs(couplings.minibatch_ot_coupling(x0_batch, x1_batch), x1_batch, n_lines=40, ax=axes[1],
           title="minibatch OT pairs")
fig.tight_layout()
plt.show()
for name, coupling in (("independent", couplings.independent_coupling), ("minibatch OT", couplings.minibatch_ot_coupling)):
    print(f"{name:12s} mean squared pair length {(coupling(x0_batch, x1_batch) - x1_batch).pow(2).sum(1).mean():.2f}")

# %% [markdown]
# **What does the exact OT cost per training step?** We time the whole `train` loop with each
# coupling at batch 256, alternating short runs on copies of one model so both see the same
# machine load. (Throwaway copies: the model above is not touched.)

# %% tags=["nbval-ignore-output"]
per_step = {"independent": [], "ot": []}
for repeat in range(3):
    for name in per_step:
        probe = copy.deepcopy(model_independent)
        per_step[name].append(train(probe, data, n_steps=30, coupling=name, seed=repeat, **RECIPE).seconds / 30)
ms = {name: 1000 * np.median(times) for name, times in per_step.items()}
OT_COST_RATIO = ms["ot"] / ms["independent"]
print(f"independent {ms['independent']:.1f} ms per step, minibatch OT {ms['ot']:.1f} ms per step: "
      f"{OT_COST_RATIO:.2f}x (target: at most 2x)")

# %% [markdown]
# Now a second model, same architecture and initial weights, trained with minibatch OT pairs. OT
# steps are dearer, so it gets only half the steps (400).

# %%
torch.manual_seed(0)
model_ot = VelocityField()
run_ot = train(model_ot, data, n_steps=400, coupling="ot", seed=0, **RECIPE)
paths = {name: solvers.solve_ode(model, x0_eval[:500], n_steps=50, method="rk4", return_trajectory=True).trajectory
         for name, model in (("independent", model_independent), ("minibatch OT", model_ot))}
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, (name, trajectory) in zip(axes, paths.items()):
    plot_trajectories(trajectory, ax=ax, n_paths=150, data=reference,
                      title=f"{name}: straightness {path_straightness(trajectory):.3f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# The learned paths (accurate RK4 solves, 50 steps) of the OT-trained model are almost straight
# lines; the straightness (chord over path length, 1 = straight) says the same in one number.
# Straight paths are what a few-step solver needs. Quality at 1, 2 and 4 network evaluations:

# %%
FEW = [("euler", 1), ("euler", 2), ("midpoint", 2), ("heun", 2), ("euler", 4), ("rk4", 4)]

def few_step_table(models):
    """{(model name, method, nfe): (W2 ratio, off-mode)} for the few-step solvers in FEW."""
    table = {}
    for name, model in models.items():
        for method, nfe in FEW:
            table[name, method, nfe] = score(name, model, method, nfe)
        print(f"{name:26s} " + "  ".join(f"{m} {n}: {table[name, m, n][0]:4.2f}x" for m, n in FEW))
    return table

results = few_step_table({"independent": model_independent, "minibatch OT": model_ot})

# %% [markdown]
# With OT pairs a **single Euler step** already lands close to the data; the independent model
# needs about four evaluations for the same. The minibatch is what limits OT: with 256 points per
# batch the pairing is optimal only within the batch, so some crossing (and curvature) remains.
#
# ### Conditional models: OT only within a class
#
# For the one-hot model of section 17.6 each data point comes with its class. Plain minibatch OT
# ignores the class and may hand a point of mode 3 the noise that lies nearest mode 5; the network
# then sees, for the code "mode 3", targets that start at noise pointing anywhere, and learns to
# move noise towards the *nearest* mode instead of the requested one. The package's `class_ot`
# coupling solves the OT problem separately inside each class, so pairs never cross classes.
# We train three one-hot models, one per coupling, and score them on class-balanced samples:
# the share that lands on the requested mode (within 3 std of its centre) and W2 of all of them.

# %%
ONEHOT_STEPS = {"independent": 400, "class_ot": 400, "ot": 200}
onehot_models = {}
for coupling, n_steps in ONEHOT_STEPS.items():
    torch.manual_seed(0)
    onehot_models[coupling] = ConditionalVelocityField(n_classes=8)
    train(onehot_models[coupling], data, labels=labels, n_steps=n_steps, coupling=coupling, seed=0, **RECIPE)

codes = torch.eye(8)[torch.arange(N_EVAL) % 8]                # classes 0..7 in turn
for coupling, model in onehot_models.items():
    row = []
    for method, nfe in (("euler", 1), ("euler", 2), ("euler", 4)):
        x = solvers.solve_ode(model, x0_eval, n_steps=nfe, method=method, condition=codes).x
        distance, nearest = distance_to_nearest_mode(x)
        on_mode = np.mean((nearest == codes.argmax(1).numpy()) & (distance <= 0.75))
        row.append(f"NFE {nfe}: {100 * on_mode:5.1f}% on mode, W2 {quality(x)[0]:4.2f}x")
    print(f"{coupling:12s} " + " | ".join(row))

# %% [markdown]
# Plain OT wrecks the conditional model: most samples land on *a* mode, but rarely the requested
# one. Within-class OT keeps the classes; here it is about as good as independent pairs (the
# one-hot model is easy for few steps anyway: per class it moves one Gaussian blob onto another,
# a nearly straight flow, so there is little left to straighten). Note that class-balanced samples score a little *below* the floor: real data draws its
# classes at random, which adds its own variation. Below, the 1-step samples in their class colours.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
classes = codes[:400].argmax(1)
for ax, (coupling, model) in zip(axes, onehot_models.items()):
    x = solvers.solve_ode(model, x0_eval[:400], n_steps=1, condition=codes[:400]).x
    plot_conditional_samples_discrete({k: x[classes == k] for k in range(8)}, real_data=reference,
                                      real_labels=reference_labels, ax=ax,
                                      title=f"one-hot, {coupling} pairs, 1 Euler step")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Reflow: straighten a trained model
#
# Rectified flow (Liu et al., 2022) needs no OT solver. Take the trained model, carry many base
# points x0 to their endpoints x1 with an accurate solve, and train again on exactly those pairs.
# Along each pair the model's own flow already connects x0 to x1 without collisions, so the straight
# lines between them hardly cross and the new field is nearly straight. The new model starts from
# the old weights and trains for 300 steps on 3000 pairs (RK4, 10 steps, made them).

# %%
print(inspect.getsource(reflow.reflow_pairs).split('"""')[0] + "...")
pairs = reflow.reflow_pairs(model_independent, 3000, method="rk4", n_steps=10, seed=7)
model_reflow = copy.deepcopy(model_independent)
run_reflow = reflow.train_on_pairs(model_reflow, pairs, n_steps=300, lr=1e-3, seed=3)
print(f"reflow loss, first 50 steps {np.mean(run_reflow.losses[:50]):.3f} -> last 50 {np.mean(run_reflow.losses[-50:]):.3f}")

# %% [markdown]
# The loss of reflow falls far lower than flow matching's (printed further up): on a coupling
# without crossings one field can follow every pair, so the per-pair velocity is learnable. Now the
# one-step sampler, before and after:

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
for ax, (name, model) in zip(axes[:2], (("independent", model_independent), ("reflow (of independent)", model_reflow))):
    x = solvers.solve_ode(model, x0_eval, n_steps=1).x
    plot_samples(x, data=reference, ax=ax, title=f"{name}: 1 Euler step, {score(name, model, 'euler', 1)[0]:.2f}x floor")
trajectory = solvers.solve_ode(model_reflow, x0_eval[:500], n_steps=50, method="rk4", return_trajectory=True).trajectory
plot_trajectories(trajectory, ax=axes[2], n_paths=150, data=reference,
                  title=f"paths after reflow: straightness {path_straightness(trajectory):.3f}")
fig.tight_layout()
plt.show()
results.update(few_step_table({"reflow (of independent)": model_reflow}))

# %% [markdown]
# ## Targets
#
# At most two network evaluations, every combination above, against the floor. The chapter's own
# recipe (independent pairs, 2 Euler steps) scores about 3x; the target is 1.5x.

# %%
at_most_two = {key: value for key, value in results.items() if key[2] <= 2}
for (name, method, nfe), (ratio, off) in sorted(at_most_two.items(), key=lambda item: item[1][0]):
    verdict = "meets" if ratio <= 1.5 else "misses"
    print(f"{name:26s} {method:8s} NFE {nfe}: W2 {ratio:4.2f}x floor, {100 * off:4.1f}% off-mode ({verdict} 1.5x)")
best = min(at_most_two, key=lambda key: at_most_two[key][0])
print(f"best with <= 2 NFE: {best[0]}, {best[1]} with {best[2]} NFE at {at_most_two[best][0]:.2f}x the floor")

# %% [markdown]
# Straight paths (OT pairs or reflow) meet the W2 target with one or two evaluations; the chapter's
# random pairs miss it by far. Read the off-mode column too, though: even the best few-step
# samples leave over a quarter of the points between the modes, and accurate solves of the
# independent model still leave about a sixth (the sweep above). That is the price of training
# for seconds: W2 on 1000 points is dominated by sampling noise and hardly sees blur of that size,
# while the off-mode share does. A well-trained model leaves about 1.3% there (the data's own
# rate is 1.1%), so these few-step samplers are as good as *these* models, not as good as flow
# matching gets.

# %% tags=["nbval-ignore-output"]
print(f"minibatch OT costs {OT_COST_RATIO:.2f}x the time of an independent training step (target: at most 2x)")
print(f"notebook ran for {time.perf_counter() - notebook_start:.0f} s after the imports (target: 60 s in all)")

# %% [markdown]
# ## 4. Try it: solver, budget and coupling
#
# Pick a model by how it was trained, a solver and a budget of network evaluations. Left: 500
# samples; right: the path each solver step took (coloured dots) over the accurate path (grey).
# With curved paths the coloured steps cut corners; after OT or reflow they lie on the grey lines.

# %% tags=["nbval-ignore-output"]
explorer = widgets.few_step_explorer(
    {"independent": model_independent, "minibatch OT": model_ot, "reflow (of independent)": model_reflow,
     "one-hot, class OT": onehot_models["class_ot"], "one-hot, plain OT": onehot_models["ot"]},
    method="euler", nfe=1, data=reference, floor=float(np.mean([w2_floor(500, seed=s) for s in (10, 20, 30)])))
explorer

# %% [markdown]
# ## Summary
#
# * Sampling cost is network evaluations. With the chapter's random pairs, W2 reaches the floor
#   from about 4 to 8 evaluations with any fixed-step solver, and no solver works with 1 or 2.
# * Straighter paths are worth more than a better solver: minibatch OT pairs, or one round of
#   reflow, make a single Euler step land close to the data.
# * Exact minibatch OT costs extra time per training step, printed above for this run: on the
#   project's 2-core machine between about 2.5x and 6x an independent step at batch 256 (it
#   varies with load), above the 2x we aimed for. POT's exact network-simplex solver needs about
#   9 ms per batch of 256, several whole training steps of this small network. Sparse candidate
#   pairs checked against the dual solution, warm starts, SciPy's assignment solver and LAPJV
#   were all slower. For conditional models OT must stay within each class, or samples go to the
#   wrong mode.
