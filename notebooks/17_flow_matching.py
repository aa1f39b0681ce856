# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation,-kernelspec
# ---

# %% [markdown]
# # 17 Flow Matching
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/flow-matching-suite/flow-matching-notebooks/blob/main/notebooks/17_flow_matching.ipynb)
#
# Diffusion models, the subject of the last chapters, corrupt data with noise and then learn to
# undo the corruption one small random step at a time. This chapter asks whether the noise is
# needed at all. **Flow matching** learns a *deterministic* velocity field that carries points of
# a simple base distribution, step by step, onto the data. It borrows two ideas we met before:
# from continuous normalising flows, the idea of moving points along a learned vector field; from
# optimal transport, the idea of pairing points of two distributions. It keeps the training
# cheap: no Jacobian determinants, no ODE solve inside the training loop, just a regression.
#
# The header cell below is the same in every notebook of this suite: imports, a fixed seed, the
# plot style, and the device. It also draws the data every section uses, so a lecture can start
# at any of the sections 17.3 to 17.6 (with its subsections) after running this cell.

# %% tags=["colab"]
import subprocess
import sys

if "google.colab" in sys.modules:   # on Colab: install the package these notebooks import
    package = "gen_models_utilities @ git+https://github.com/flow-matching-suite/flow-matching-notebooks"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)

# %%
import inspect
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from gen_models_utilities import (BASES, ConditionalVelocityField, ConditionalVelocityFieldRadius,
                                  create_ring_gaussians, device, flow_matching_loss, generate, off_mode_fraction, class_code, path_straightness,
                                  plot_conditional_samples_continuous, plot_conditional_samples_discrete,
                                  plot_loss, plot_pairs, plot_samples, plot_trajectories, plot_velocity_field,
                                  reference_data, ring_quality, sample_base, set_seed, solve_ode, use_book_style)
from gen_models_utilities import plotting, pretrained, solvers, widgets
from gen_models_utilities import data as data_module
from gen_models_utilities.animation import animate_particles, animate_velocity_field
from gen_models_utilities.marginal_field import RingMarginalField
from gen_models_utilities.metrics import distance_to_nearest_mode
from gen_models_utilities.training import make_optimizer, sample_times

torch.set_num_threads(1)       # one thread: the printed numbers do not depend on the machine's cores
set_seed(0)
use_book_style()
data, labels = create_ring_gaussians(n_samples=4000, seed=0)    # the ring: (4000, 2) points, (4000,) modes
points = torch.as_tensor(data)
print(f"device: {device}")

# %% [markdown]
# ## 17.1 Learning Objectives
#
# After working through this notebook you should be able to
#
# - explain how a deterministic flow (an ODE) differs from the random reverse process of a diffusion model;
# - build a path between a base distribution and the data by joining random pairs of points with straight lines;
# - say which field the network learns (the average of the per-pair velocities), and why its loss stays above zero;
# - train a time-dependent network to predict the velocity along those paths;
# - generate samples by integrating the learned velocity field with an ODE solver, and judge them with numbers;
# - condition the velocity field on a class or on a continuous quantity, and recognise when a condition asks the model to extrapolate.

# %% [markdown]
# ## 17.2 The Noise-Free Limit
#
# A diffusion sampler has to take many small steps because each step removes a little of the
# noise that the forward process injected. Flow matching removes the noise from the picture.
# It learns a velocity field $v_\theta(x, t)$ and moves every point by the ordinary
# differential equation
#
# $$\frac{\mathrm{d}x_t}{\mathrm{d}t} = v_\theta(x_t, t), \qquad t \in [0, 1].$$
#
# We draw a starting point $x_0 \sim p_0$ from the base distribution and integrate from $t = 0$
# to $t = 1$; the end point $x_1$ should be distributed like the data, $p_1$. Given the start,
# the whole path is fixed: there is no randomness along the way. Continuous normalising flows
# (CNFs) sample the same way; the two differ in how the field is trained.

# %% [markdown]
# ## 17.3 Interpolating a Path
#
# Which field should the network learn? A CNF obtains it by maximum likelihood, which needs the
# trace of the Jacobian of $v_\theta$ and an ODE solve, differentiated end to end, at every
# training step. Flow matching instead *prescribes* a path for single points and asks the
# network to reproduce its velocity.
#
# Take a base point $x_0 \sim p_0$ and a data point $x_1 \sim p_1$, drawn independently. The
# straight line between them is
#
# $$x_t = (1 - t)\, x_0 + t\, x_1,$$
#
# and a point moving along it has the constant velocity
#
# $$u_t(x_t \mid x_0, x_1) = \frac{\mathrm{d}x_t}{\mathrm{d}t} = x_1 - x_0 .$$
#
# This is the **conditional** (per-pair) velocity: it is only known because we know which
# pair the point came from. Nothing here asks $p_0$ to be Gaussian; any distribution we can
# sample from will do. The package offers three bases: a standard Gaussian, a uniform square
# and the "ETH zürich" word mark. Our data is a ring of eight Gaussian blobs.
#
# In the figure, look at the dashed lines: each joins one base point to the data point it was
# randomly paired with.

# %%
fig, axes = plt.subplots(1, len(BASES), figsize=(4.4 * len(BASES), 4.4), dpi=50)
for ax, base in zip(axes, BASES):                                # every registered base
    x0 = sample_base(base, 600, seed=1)                           # (600, 2) base points
    plot_pairs(x0, data[:600], n_lines=12, ax=ax, title=BASES[base].label)
fig.tight_layout()
plt.show()

# %% [markdown]
# Whatever the base, the recipe is the same: pick a base point, pick a data point, join them.
# The lines cross each other freely, which matters in the note below.
#
# > **Note: why random pairs are enough.** Pairing points at random looks wasteful next to the
# > optimal transport pairings of an earlier chapter. Many different pairs pass through the
# > same point $x$ at time $t$, with different velocities $x_1 - x_0$. The field we actually
# > want at $x$ is their average, the **marginal velocity**
# > $u_t(x) = \mathbb{E}\left[x_1 - x_0 \mid x_t = x\right]$, whose flow carries $p_0$ exactly
# > onto $p_1$. In general we cannot compute it, since it averages over all pairs. Lipman et
# > al. (2023) showed that we do not need to: the loss against the per-pair velocity
# > (conditional flow matching) and the loss against the marginal velocity (flow matching)
# > differ by a constant that does not depend on $\theta$, so **they have the same gradients**
# > and the same minimiser. Regressing on random pairs therefore trains the network towards the
# > marginal field.
# >
# > That marginal field is *not* the optimal transport map. Where pairs cross, their average
# > velocity turns, so its trajectories bend, and the start and end points it connects are in
# > general not the cheapest pairing. Pairing each batch by optimal transport instead of at
# > random (Tong et al. 2023; Pooladian et al. 2023; `coupling="ot"` in `train`) gives
# > straighter paths; the chapter, and this notebook, use random pairs.

# %% [markdown]
# ### 17.3.1 The marginal field, exactly
#
# For our data and the Gaussian base the average can be computed in closed form, which gives us
# a ground truth to hold the network against. Given that $x_1$ comes from blob $k$ (centre
# $\mu_k$, standard deviation $s$), the point $x_t$ is Gaussian with mean $t\,\mu_k$ and variance
# $\sigma_t^2 = (1-t)^2 + t^2 s^2$ in each coordinate, and so is the velocity $x_1 - x_0$;
# averaging over the blobs, each weighted by how likely it is to have produced $x$, gives
#
# $$u_t(x) = \sum_k w_k(x) \left[\mu_k + \frac{t s^2 - (1 - t)}{\sigma_t^2}\,(x - t\,\mu_k)\right],
# \qquad w_k(x) \propto \exp\!\left(-\frac{\|x - t\,\mu_k\|^2}{2\sigma_t^2}\right).$$
#
# Two times are easy to read off. At $t = 0$ every blob is equally likely and
# $u_0(x) = \mathbb{E}[x_1] - x = -x$: the arrows point at the ring's centre, where there is no
# data, because the average of eight directions around the ring is the centre. At $t = 1$,
# $u_1(x) = x - \mathbb{E}[x_0] = x$: the arrows point outwards. The pull into the separate blobs
# happens in between. `RingMarginalField` in the package computes $u_t(x)$; it is called like a
# model, `exact(x, t)`.
#
# We check the idea at one point $x$ and time $t = 0.5$: draw many random pairs, keep those
# whose $x_t$ passes within 0.1 of $x$, and average their velocities.

# %%
exact = RingMarginalField()                                       # u_t(x) for the Gaussian base and the ring
flow_model, _ = pretrained.load_pretrained("fm", "gaussian")     # the network trained in 17.4
point, t = torch.tensor([1.5, 0.5]), 0.5
x1 = torch.as_tensor(create_ring_gaussians(400_000, seed=1)[0])   # many pairs (x0, x1)
x0 = torch.randn(len(x1), 2, generator=torch.Generator().manual_seed(2))
x_t = (1 - t) * x0 + t * x1
per_pair = (x1 - x0)[(x_t - point).norm(dim=1) < 0.1]            # velocities of the pairs passing near x
with torch.no_grad():
    network = flow_model(point[None], torch.tensor([[t]]))[0]
marginal = exact(point[None], t)[0]
spread = ((per_pair - per_pair.mean(dim=0)) ** 2).sum(dim=1).mean() / 2      # per coordinate
print(f"{len(per_pair)} pairs pass within 0.1 of x = {point.tolist()} at t = {t}")
for name, v in [("mean of their velocities", per_pair.mean(dim=0)), ("exact u_t(x)", marginal),
                ("network v_theta(x, t)", network)]:
    print(f"{name:26s} ({v[0]:+.2f}, {v[1]:+.2f})")
print(f"spread of the per-pair velocities around their mean: {spread:.2f} per coordinate")

# %% [markdown]
# In the figure (a close-up around $x$), look at the grey fan: every grey arrow is one pair's
# velocity $x_1 - x_0$, drawn half length. The black arrow is their mean, the red one the exact
# $u_t(x)$, the green one what the trained network predicts.

# %%
plotting.plot_pair_velocities(point, per_pair, {"mean of the pairs": per_pair.mean(dim=0), "exact $u_t(x)$": marginal,
                                                "network $v_\\theta(x, t)$": network},
                              title=f"pairs passing near x at t = {t}")
plt.show()

# %% [markdown]
# The per-pair velocities fall into two bundles, one towards each of the two nearest blobs,
# with a few stragglers towards blobs further away; yet their mean, the exact marginal velocity
# and the network's prediction nearly coincide (the printed numbers agree to about a tenth).
# The grey fan is the reason the loss cannot reach zero: the target $x_1 - x_0$ varies from pair
# to pair at the same $x_t$, and the network sees only $x_t$ and $t$. The best it can do is
# predict the mean; the spread printed above stays behind as loss.

# %% [markdown]
# ## 17.4 Training via Velocity Regression
#
# The network $v_\theta(x_t, t)$ regresses onto the per-pair velocity with a mean squared error,
#
# $$\mathcal{L}(\theta) = \mathbb{E}_{t \sim \mathcal{U}[0,1],\; x_0 \sim p_0,\; x_1 \sim p_1}
# \left\| v_\theta(x_t, t) - (x_1 - x_0) \right\|^2, \qquad x_t = (1-t)\,x_0 + t\,x_1 .$$
#
# There is no noise schedule to choose and no simulation of the ODE during training.
#
# The velocity network is a small multilayer perceptron, written here as the chapter writes it.
# Time is a real number, so instead of a lookup table it gets a little MLP of its own that turns
# $t$ into a feature vector; the trunk sees the position and these time features side by side.

# %%
class VelocityField(nn.Module):
    """v(x, t): x (B, 2) and t (B, 1) -> velocity (B, 2)."""

    def __init__(self, time_emb_dim=16, hidden_dim=128):
        super().__init__()
        # We can't use an embedding layer for continuous time, so we use a small MLP
        self.time_mlp = nn.Sequential(nn.Linear(1, time_emb_dim), nn.ReLU(),
                                      nn.Linear(time_emb_dim, time_emb_dim), nn.ReLU(),
                                      nn.Linear(time_emb_dim, time_emb_dim))
        self.net = nn.Sequential(nn.Linear(2 + time_emb_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, 2))          # predicts the velocity vector

    def forward(self, x, t):
        t_emb = self.time_mlp(t)
        return self.net(torch.cat([x, t_emb], dim=-1))

print(f"{sum(p.numel() for p in VelocityField().parameters())} parameters")

# %% [markdown]
# The package's `models.VelocityField`, which the shipped checkpoints hold, is the same network.
# To check, we copy a checkpoint's weights into the class above and compare the velocities.

# %%
flow_model, metadata = pretrained.load_pretrained("fm", "gaussian")   # models.VelocityField, trained
ours = VelocityField()
ours.load_state_dict(flow_model.state_dict())                          # same layer names and shapes
x, t = torch.randn(500, 2), torch.rand(500, 1)
with torch.no_grad():
    print("same velocities:", torch.allclose(ours(x, t), flow_model(x, t)))

# %% [markdown]
# ### 17.4.1 The Training Pipeline
#
# One training step does the following:
#
# 1. **Pair:** draw a batch of data points $x_1$ and, independently, a batch of base points $x_0$.
# 2. **Time:** draw one $t$ per pair.
# 3. **Interpolate:** $x_t = (1 - t)\,x_0 + t\,x_1$.
# 4. **Target:** the per-pair velocity $x_1 - x_0$.
# 5. **Predict:** evaluate $v_\theta(x_t, t)$.
# 6. **Loss:** the mean squared error between prediction and target.
# 7. **Update:** backpropagate and take an optimiser step.
#
# Here is that step written out, numbered like the list. The chapter draws $t \sim \mathcal{U}[0, 1]$;
# `time_sampling="logit_normal"` draws $t = \mathrm{sigmoid}(z)$, $z \sim \mathcal{N}(0, 1)$
# instead, which we use below.

# %%
def training_step(model, optimizer, points, batch_size=256, time_sampling="uniform"):
    # One flow matching step on a random batch of points (N, 2); returns the loss as a float.
    x1 = points[torch.randint(len(points), (batch_size,))]                 # 1. data batch (B, 2)
    x0 = torch.randn(batch_size, 2)                                        # 1. Gaussian base batch (B, 2)
    t = sample_times(batch_size, time_sampling)                            # 2. times (B, 1)
    x_t = (1 - t) * x0 + t * x1                                            # 3. point on the line
    target = x1 - x0                                                       # 4. per-pair velocity
    prediction = model(x_t, t)                                             # 5. network's velocity
    loss = nn.functional.mse_loss(prediction, target)                      # 6. regression loss
    optimizer.zero_grad()
    loss.backward()                                                        # 7. update
    optimizer.step()
    return loss.item()

# %% [markdown]
# The package's `flow_matching_loss` is the same computation as steps 3 to 6; on one fixed batch
# both give the same number.

# %%
set_seed(0)
model = VelocityField()
x0, x1, t = torch.randn(256, 2), points[:256], torch.rand(256, 1)
by_hand = nn.functional.mse_loss(model((1 - t) * x0 + t * x1, t), x1 - x0).item()
print(f"by hand: {by_hand:.4f}   package: {flow_matching_loss(model, x0, x1, t).item():.4f}")

# %% [markdown]
# Now we train a fresh network live: 1500 steps of the step above, with the learning rate
# lowered along a cosine to zero, and samples drawn (100 Euler steps, 17.5) at a few points of
# the run so we can watch them form.

# %%
n_steps, lr, snapshot_steps = 1500, 1e-2, (100, 300, 700, 1500)
set_seed(0)
live_model = VelocityField()
optimizer = make_optimizer(live_model, lr)                 # AdamW, as the package's train uses it
losses, snapshots = [], {}
for step in range(n_steps):
    optimizer.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / n_steps))   # cosine decay
    losses.append(training_step(live_model, optimizer, points, time_sampling="logit_normal"))
    if step + 1 in snapshot_steps:
        snapshots[step + 1] = generate(live_model, 1000, seed=1).x                         # (1000, 2)
for step, samples in snapshots.items():
    print(f"after {step:4d} steps: {100 * off_mode_fraction(samples):4.1f}% of the samples off every mode")

# %% [markdown]
# In the panels, look at the space between the blobs: it empties as training goes on.

# %%
fig, axes = plt.subplots(1, len(snapshots), figsize=(3.4 * len(snapshots), 3.6), dpi=50)
for ax, (step, samples) in zip(axes, snapshots.items()):
    plot_samples(samples, data=data[:1000], ax=ax, title=f"after {step} steps")
    ax.label_outer()
    ax.get_legend().remove()
fig.tight_layout()
plt.show()

# %% [markdown]
# After 100 steps the samples form a blurred ring; by 700 steps the eight blobs are there, and
# the share of samples between them keeps falling to the end of the run (32.0%, 17.6%, 6.0%,
# 2.7% in the printout). The yardstick of 17.5 measures the last set three ways: its W2
# distance to a reference draw of the data beside what fresh data scores, the share off every
# mode beside the data's own 1.1%, and the count per mode.

# %%
print("live model, 1500 steps:", ring_quality(snapshots[n_steps]))

# %% [markdown]
# **Watch it learn.** Press **Start** below and a fresh network trains in the background while
# the picture updates several times a second: the loss (left) falls towards the loss of the exact
# field (dashed, uniform $t$) but never to zero, the samples (middle, 8 Euler steps from the same
# noise every frame) gather on the eight modes, and the field at time $t$ (right) turns towards
# them. **Pause** keeps the model, **Reset** starts again; try minibatch OT, another base or a
# larger learning rate. The other widgets keep answering while it trains.

# %% tags=["nbval-ignore-output"]
live = widgets.training_explorer(base="gaussian", lr=1e-3, batch_size=256,
                                 loss_floor=RingMarginalField().average_loss_floor("uniform"))
live

# %% [markdown]
# (Without a kernel, the snapshots above show the same story.) The model it trained goes to any
# other explorer in one line, for example `widgets.sample_explorer(live.model)`.

# %% [markdown]
# ### 17.4.2 The loss floor
#
# The loss flattens well above zero, and 17.3.1 showed why: at each $x_t$ the targets $x_1 - x_0$
# spread around their mean $u_t(x_t)$, and no network can predict the spread. So even the exact
# field leaves a loss, the **floor**, which `RingMarginalField` computes (`exact.loss_floor(t)`).
# It depends on $t$, and we will see its curve below.
#
# How $t$ is drawn therefore matters for the number we see. Logit-normal times are rarely near
# 0 or 1. They do not change the best velocity at any single $t$, but they weight the times
# differently, so the training loss averages the per-$t$ losses with other weights than a
# uniform $t$ does, and it has its own, lower floor. We measure both models on the same 65536
# fresh pairs with each way of drawing $t$, together with the exact field on those pairs.

# %%
exact = RingMarginalField()                                      # the exact field of 17.3.1
floors = {how: exact.average_loss_floor(how) for how in ("uniform", "logit_normal")}
generator = torch.Generator().manual_seed(4)
x0, x1 = torch.randn(65536, 2, generator=generator), torch.as_tensor(create_ring_gaussians(65536, seed=5)[0])
times = {how: sample_times(65536, how, generator) for how in floors}
print(f"{'':26s}" + "".join(f"{how + ' t':>16s}" for how in floors))
print(f"{'exact floor':26s}" + "".join(f"{floors[how]:16.3f}" for how in floors))
with torch.no_grad():
    for name, net in [("exact field on these pairs", exact), ("live model, 1500 steps", live_model),
                      (f"checkpoint, {metadata['steps']} steps", flow_model)]:
        print(f"{name:26s}" + "".join(f"{flow_matching_loss(net, x0, x1, times[how]).item():16.3f}" for how in floors))
print(f"live training loss, mean of the last 200 steps (logit-normal t): {np.mean(losses[-200:]):.3f}")

# %% [markdown]
# Here is the training loss of the live run against the two floors.

# %%
plot_loss(losses, window=50, title="live run: flow matching loss (logit-normal t)",
          floors={f"exact floor, logit-normal t ({floors['logit_normal']:.2f})": floors["logit_normal"],
                  f"exact floor, uniform t ({floors['uniform']:.2f})": floors["uniform"]})
plt.show()

# %% [markdown]
# The running mean settles a little above the logit-normal floor, the floor of the times it was
# trained on. The table says the same with less noise: on the same pairs both models score only
# a little above the exact field, and each column's numbers differ from the other column's by
# about the gap between the floors, because the two columns weight the times differently, not
# because the models changed. The loss shows how close a model is to the floor, not how close
# its samples are to the data: the checkpoint's lead over the live model is small in the table
# and clear in the samples (17.5).
#
# Per $t$ the picture is sharper: the loss of both models at ten fixed times, on 8192 of the same
# pairs, against the exact floor curve. Look at where the black curve is highest.

# %%
grid_t = np.linspace(0, 1, 21)
eval_t = np.linspace(0.05, 0.95, 10)
per_t = {"live model": [], "checkpoint": []}
with torch.no_grad():
    for t in eval_t:
        column = torch.full((8192, 1), float(t))
        for name, net in [("live model", live_model), ("checkpoint", flow_model)]:
            per_t[name].append(flow_matching_loss(net, x0[:8192], x1[:8192], column).item())
floor_t = [exact.loss_floor(float(t)) for t in grid_t]
plotting.plot_loss_floor(grid_t, floor_t, {name: (eval_t, values) for name, values in per_t.items()})
plt.show()
print("exact floor at t = 0, 0.5, 1:", [round(exact.loss_floor(t), 2) for t in (0.0, 0.5, 1.0)],
      f"| highest {max(floor_t):.2f} at t = {grid_t[np.argmax(floor_t)]:.2f}, lowest {min(floor_t):.2f} at t = {grid_t[np.argmin(floor_t)]:.2f}")

# %% [markdown]
# The floor is highest early in the flow (near $t = 0.15$), not in the middle where the blobs
# separate, and lowest late (near $t = 0.75$). At $t = 0$ the point $x_t = x_0$ says nothing about
# which blob its pair is heading for, and the targets spread as widely as the ring (floor 4.56).
# Just after, $x_t$ still says little, but the velocity a pair through $x_t$ needs,
# $(x_1 - x_t)/(1 - t)$, grows with $t$, and so does its spread: the floor rises. Once $x_t$ tells
# the blobs apart the spread collapses, and at $t = 1$ only the base point's spread is left
# (floor 1.00). Both models sit on the curve except near $t = 0.95$, where they are slightly above
# it: late in the flow is where the network's field is least exact, as the next figures show.
#
# The weights explain the two columns of the table: logit-normal times rarely fall near 0 or 1
# and mostly in the middle, so they give the high early floor less weight than uniform times do,
# and their average floor is lower. They change the weighting of the times in the objective;
# the best velocity at each single $t$ stays the exact field.

# %% [markdown]
# ### 17.4.3 The learned field against the exact one
#
# The rest of the notebook uses the **checkpoint**: the same network, trained for
# 8000 steps with the recipe in
# `gen_models_utilities/pretrained/recipes.py` (its learning rate is lower than the live run's, as it has
# more steps). `pretrained.PretrainedModels("fm")` holds the checkpoints of every base and
# loads each one the first time a widget asks for it.
#
# Here is the field at the start, the middle and the end of the flow, exact (top) and learned
# (bottom). Look at the direction of the arrows at $t = 0$ and at $t = 1$.

# %%
base_points = sample_base("gaussian", 300, seed=1)
fig, axes = plt.subplots(2, 3, figsize=(10.5, 7.2), dpi=60)
for column, t in enumerate((0.0, 0.5, 1.0)):
    plot_velocity_field(exact, t, ax=axes[0, column], data=data[:300], base=base_points, n_grid=11, width=0.012,
                        title=f"exact, t = {t:.1f}")
    plot_velocity_field(flow_model, t, ax=axes[1, column], data=data[:300], base=base_points, n_grid=11, width=0.012,
                        title=f"learned, t = {t:.1f}")
fig.tight_layout()
plt.show()
with torch.no_grad():       # at each time, the points where the flow has them: base points at 0, data at 1
    for t, x, name, sign in [(0.0, sample_base("gaussian", 1000, seed=8), "-x", -1), (1.0, points[:1000], "x", 1)]:
        print(f"t = {t:.0f}, at {'base' if t == 0 else 'data'} points: |exact - {name}| at most "
              f"{(exact(x, t) - sign * x).norm(dim=1).max():.1e}, |learned - {name}| on average "
              f"{(flow_model(x, t) - sign * x).norm(dim=1).mean():.2f} (|x| on average {x.norm(dim=1).mean():.2f})")

# %% [markdown]
# At $t = 0$ every arrow, exact and learned, points at the empty centre of the ring: the learned
# field differs from $-x$ by 0.29 on average at the base points, where $|x|$ averages 1.26. At
# $t = 1$ the exact arrows all point outwards. The learned ones do so on the blobs, where the
# points are at $t = 1$ (a difference of 0.77 on average, against $|x|$ about 3); inside the ring,
# where no point is at $t = 1$, the network never saw a target and its arrows run along spokes
# towards the blobs instead. At $t = 0.5$ the arrows of both bend towards the eight blobs: the pull
# into separate blobs is a matter of the middle of the flow.
#
# Where is the learned field most wrong? The heat maps show $|v_\theta(x, t) - u_t(x)|$ on a
# grid, with samples of $x_t$ on top (cyan) to show where points actually are at that time.

# %%
fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2), dpi=50)
rows = []
for ax, t in zip(axes, (0.2, 0.6, 0.95)):
    x_t = (1 - t) * x0[:1000] + t * x1[:1000]                             # where points are at time t
    plotting.plot_field_error(flow_model, exact, t, ax=ax, points=x_t, vmax=3.0)
    with torch.no_grad():
        error = (flow_model(x_t, t) - exact(x_t, t)).norm(dim=1)
    rows.append(f"t = {t:.2f}: |v_theta - u_t| at the points x_t: median {error.median():.2f}, 99th percentile "
                f"{error.quantile(0.99):.2f}")
fig.tight_layout()
plt.show()
print("\n".join(rows))

# %% [markdown]
# Where the points are (cyan), the error is small early and in the middle of the flow (medians
# 0.05 and 0.06 at t = 0.2 and 0.6) and larger late (median 0.45 at t = 0.95, when the exact
# field is steepest). Away from the points it is large: in the corners and, late in the flow, in
# the gaps between the blobs, where few training points ever pass and nothing constrains the
# network. The late gaps matter most, since a sample that strays into one is pushed by a field
# that no training target checked.
#
# The field changes with time, so a single snapshot cannot describe it. The animation runs $t$
# from 0 to 1.

# %% tags=["nbval-ignore-output"]
animate_velocity_field(flow_model, data=data[:300], n_frames=4, dpi=40)

# %% [markdown]
# Each base has its own checkpoint and its own field. Here they are side by side at $t = 0.5$;
# look at how differently the arrows run from each base towards the same ring.

# %%
fm_models = pretrained.PretrainedModels("fm")         # {base: checkpoint}, loaded on first use
fig, axes = plt.subplots(1, len(BASES), figsize=(3.6 * len(BASES), 3.6), dpi=60)
for ax, base in zip(axes, BASES):
    plot_velocity_field(fm_models[base], 0.5, ax=ax, data=data[:300], base=sample_base(base, 300, seed=1),
                        n_grid=11, width=0.012,
                        title=f"{BASES[base].label}, t = 0.50")
fig.tight_layout()
plt.show()

# %% [markdown]
# Each field carries its own base (light blue) onto the same ring: the arrows differ most where
# the bases differ, outside the ring for the square and along the letters for the word mark.
# Move the **t** slider to see the field at any time, and switch the **base**.

# %% tags=["nbval-ignore-output"]
widgets.field_explorer(fm_models, t=0.5, base="gaussian")


# %% [markdown]
# ## 17.5 Generating Samples by Solving the ODE
#
# To sample, draw $x_0 \sim p_0$ and integrate the ODE. The simplest solver, Euler's method,
# splits $[0, 1]$ into $N$ steps of length $h = 1/N$ and follows the velocity at the start of
# each step:
#
# $$x_{k+1} = x_k + h\, v_\theta(x_k, t_k), \qquad t_k = k\,h, \quad k = 0, \dots, N-1 .$$
#
# Written out, and checked against the package's solver `solvers.solve_ode`, with the
# checkpoint of 17.4:

# %%
@torch.no_grad()
def euler_sample(model, x0, n_steps):
    # Carry x0 (B, 2) from t = 0 to t = 1 in n_steps Euler steps; returns the path (n_steps + 1, B, 2).
    h = 1.0 / n_steps
    x, path = x0, [x0]
    for k in range(n_steps):
        t = torch.full((x.shape[0], 1), k * h)
        x = x + h * model(x, t)
        path.append(x)
    return torch.stack(path)

flow_model, _ = pretrained.load_pretrained("fm", "gaussian")
exact = RingMarginalField()
x0 = sample_base("gaussian", 2000, seed=3)
trajectory = euler_sample(flow_model, x0, n_steps=100)
package = solve_ode(flow_model, x0, n_steps=100, method="euler")
print(f"largest difference from solve_ode: {(trajectory[-1] - package.x).abs().max().item():.1e}")

# %% [markdown]
# Watch the particles: they leave the base, spread around the ring and settle into the blobs.

# %% tags=["nbval-ignore-output"]
animate_particles(trajectory[:, :400], data=data[:300], n_frames=5, dpi=40, title="Euler, 100 steps")

# %% [markdown]
# Pictures can flatter, so we measure the samples with the yardstick of this suite,
# `ring_quality`, against a fixed reference draw of 2000 data points:
#
# - **W2**: the 2-Wasserstein distance, computed exactly with POT. Two independent data sets
#   are not at distance 0, so beside it stands what fresh data of the same size scores (mean
#   ± spread over five draws): the floor.
# - **off every mode**: the share of samples more than three standard deviations from every
#   blob centre; fresh data scores about 1.1%. W2 on a couple of thousand points hardly sees
#   blur between the modes; this share does.
# - **per mode**: how many samples landed on each of the eight blobs.
#
# The verdict at the end of the line names whatever sets the samples apart from data. The same
# Euler loop on the exact field shows what a perfect network would score.

# %%
reference = reference_data(2000)
exact_end = euler_sample(exact, x0, n_steps=100)[-1]
print("checkpoint: ", ring_quality(trajectory[-1]))
print("exact field:", ring_quality(exact_end))
plot_samples(trajectory[-1, :1000], data=reference[:1000], base=x0[:1000], title="checkpoint, 100 Euler steps")
plt.show()

# %% [markdown]
# The checkpoint's samples cover all eight blobs evenly, with few samples between them, and the
# yardstick finds nothing that sets them apart from data; the exact field's samples pass too
# (their W2 is higher than the checkpoint's, which shows how much W2 varies between sample sets of
# this size). Compare the live model of 17.4, trained for 1500 steps: its line showed 2.7% of
# its samples off every mode, more than twice the data's 1.1%, and was flagged for it.
#
# **How straight are the paths?** Each pair's line is straight, but the marginal field averages
# crossing lines, so its paths need not be. Below, exact paths (black) and learned ones (cyan)
# from the same 40 starting points; the straightness is the mean of chord length over path
# length, 1 for straight lines. Look at whether the cyan paths leave the black ones anywhere.

# %%
exact_paths = solve_ode(exact, x0[:300], n_steps=100, method="rk4", return_trajectory=True).trajectory
learned_paths = trajectory[:, :300]
ax = plot_trajectories(exact_paths, n_paths=40, data=reference[:800], color="black", label="exact").axes[0]
plot_trajectories(learned_paths, ax=ax, n_paths=40, color="tab:cyan", label="learned",
                  title="paths from the same 40 starts")
ax.legend(loc="upper right", fontsize="x-small")
plt.show()
print(f"straightness: exact {path_straightness(exact_paths):.3f}, learned {path_straightness(learned_paths):.3f}")
print(f"mean distance between the exact and learned end points: {(exact_paths[-1] - learned_paths[-1]).norm(dim=1).mean():.3f}")

# %% [markdown]
# The learned paths lie on top of the exact ones almost everywhere, and their end points differ
# by the printed 0.07 on average, a quarter of a blob's standard deviation. Neither set is
# straight: both straightness values are about 0.87, so a path is on average about 15% longer
# than the straight line between its ends, and the figure shows the bends. Curved paths are why
# a coarse solver struggles (next) and why straighter couplings (17a) pay off.

# %% [markdown]
# ### 17.5.1 Fewer steps, better steps
#
# Euler's method is first order: on a smooth field, halving $h$ halves its error. The classical
# Runge-Kutta method of order four (RK4) evaluates the field four times per step and combines
# the slopes so that, on a smooth enough field and with small enough steps, its error falls like
# $h^4$. Here is the step as the package runs it (`solve_ode(..., method="rk4")` calls it):

# %%
print(inspect.getsource(solvers.rk4_step))

# %% [markdown]
# Does the learned field reward the extra work? Both solvers get the same budget of field
# evaluations, and we compare their end points with a very fine solve (RK4, 128 steps) of the
# same starts, for the learned field and for the exact one. The `order` column is the slope
# $\log_2(\text{error at } h / \text{error at } h/2)$: 1 for a first-order method, 4 for RK4 at
# its best.

# %%
starts, rows, errors = x0[:500], [], {}
for name, field in [("learned", flow_model), ("exact", exact)]:
    fine = solve_ode(field, starts, n_steps=128, method="rk4").x
    for method, steps in [("euler", (4, 8, 16, 32, 64)), ("rk4", (1, 2, 4, 8, 16))]:
        for n in steps:
            solution = solve_ode(field, starts, n_steps=n, method=method)
            errors[name, method, n] = error = (solution.x - fine).norm(dim=1).mean().item()
            order = f"{math.log2(errors[name, method, n // 2] / error):6.1f}" if n // 2 in steps else "      "
            rows.append(f"{name:8s} {method:6s} {n:6d} {solution.nfe:12d} {error:12.4f} {order} "
                        f"{100 * off_mode_fraction(solution.x):8.1f}%")
print("field    solver  steps  evaluations        error  order  off mode\n" + "\n".join(rows))
for name in ("learned", "exact"):
    print(f"RK4 on the {name} field, 2 to 16 steps: average order {math.log2(errors[name, 'rk4', 2] / errors[name, 'rk4', 16]) / 3:.1f}")

# %% [markdown]
# Euler is first order on both fields: each halving of $h$ halves its error (order 1.0). RK4 is
# far better per evaluation: with 8 evaluations its error is a third of Euler's on the learned
# field (0.040 against 0.136), with 16 a quarter. But it is nowhere near order four on the
# learned field: from 2 to 16 steps its error falls with about $h^{1.8}$ (order 3.0 for the
# first halving, then 1.3 to 2.1), not $h^4$. The fourth order rests on the field being smooth, with four continuous
# derivatives along the path. A ReLU network's field is only piecewise linear: its slope jumps
# wherever a unit switches on or off, and each such kink a step crosses costs RK4 its high order.
# The exact field is smooth, and RK4 does better on it (average order 2.8, and about 3 between
# the finer steps), yet it too falls short of 4 at these step sizes: late in the flow the exact
# field changes sharply between the blobs, and order four shows only once the steps are small
# against those changes. With a single step (4 evaluations) RK4 is worse than Euler's four steps
# on both fields: a high-order method pays off only once its steps follow the bends of the paths.
#
# With the same eight evaluations, here are Euler's and RK4's samples side by side. Look at the
# space between the blobs.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), dpi=56)
for ax, (method, n_steps) in zip(axes, [("euler", 8), ("rk4", 2)]):
    plot_samples(solve_ode(flow_model, x0[:1000], n_steps=n_steps, method=method).x, data=reference[:1000], ax=ax,
                 title=f"{method}, {n_steps} steps = 8 evaluations")
fig.tight_layout()
plt.show()

# %% [markdown]
# Euler's eight steps leave the blobs smeared towards the centre of the ring; RK4's two steps
# place them close to where the fine solve does. A few RK4 steps are enough here.
#
# Samples from the three bases, each with the checkpoint trained from it (100 Euler steps):
# look at whether each set covers the eight blobs.

# %%
fig, axes = plt.subplots(1, len(BASES), figsize=(4.4 * len(BASES), 4.4), dpi=50)
for ax, base in zip(axes, BASES):
    samples = generate(pretrained.load_pretrained("fm", base)[0], 1000, base=base, seed=0).x
    plot_samples(samples, data=reference[:1000], base=sample_base(base, 1000, seed=0), ax=ax, title=BASES[base].label)
    print(f"{base:10s} {100 * off_mode_fraction(samples):.1f}% of 1000 samples off every mode")
fig.tight_layout()
plt.show()

# %% [markdown]
# Each checkpoint covers all eight blobs from its own base; the Gaussian-base model leaves the
# fewest samples between them (the printed shares).
#
# Now try it yourself: choose the **base**, the number of **steps** (1 to 500) and the
# **solver**; the plot and the quality line are redrawn with the checkpoint trained from that
# base.

# %% tags=["nbval-ignore-output"]
widgets.sample_explorer(pretrained.PretrainedModels("fm"), base="gaussian", n_steps=100, method="euler",
                        n_samples=1000, data=reference_data(2000))

# %% [markdown]
# ## 17.6 Conditional Generation with Flow Matching
#
# To ask for a particular kind of sample, give the network the request as an extra input, a
# condition $c$: it learns $v_\theta(x_t, t, c)$. In training, each data point $x_1$ brings its
# own condition, and the loss is the same regression as before,
#
# $$\mathcal{L}(\theta) = \mathbb{E}\left\| v_\theta(x_t, t, c) - (x_1 - x_0) \right\|^2 .$$
#
# In sampling, we fix the condition we want and integrate as before. Our first condition is the
# blob a point belongs to, its label, given as a one-hot code of length 8. The network is the
# same MLP with the code appended to its input:

# %%
print(inspect.getsource(ConditionalVelocityField))

# %% [markdown]
# One conditional training step, written out. The label travels with its data point, and its
# one-hot code goes into the network beside $x_t$ and $t$. **Condition dropout** replaces the
# code of a random share of the rows (here 10%) by zeros, a "no class" input, so that the same
# network also learns the unconditional field; classifier-free guidance (17b) needs
# both.

# %%
def conditional_training_step(model, optimizer, points, codes, batch_size=256, p_drop=0.1):
    # One step on points (N, 2) with their one-hot codes (N, 8); returns the loss as a float.
    i = torch.randint(len(points), (batch_size,))
    x1, c = points[i], codes[i]                                  # data and its condition, (B, 2) and (B, 8)
    keep = (torch.rand(batch_size, 1) >= p_drop).float()
    c = c * keep                                                 # condition dropout: some rows "no class"
    x0, t = torch.randn(batch_size, 2), torch.rand(batch_size, 1)
    x_t = (1 - t) * x0 + t * x1
    loss = nn.functional.mse_loss(model(x_t, t, c), x1 - x0)     # the same regression, c as an extra input
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()

# %% [markdown]
# A few hundred live steps, then we ask for 100 samples of each mode and count how many land on
# the requested blob. The all-zero code, the "no class" input that dropout taught, should give
# samples of every blob.

# %%
codes = class_code(labels, 8)                     # (4000, 8): the condition of every point
set_seed(0)
live_onehot = ConditionalVelocityField(n_classes=8)
optimizer = make_optimizer(live_onehot, lr=5e-3)
live_losses = [conditional_training_step(live_onehot, optimizer, points, codes) for _ in range(300)]
print(f"300 steps, mean loss of the last 100: {np.mean(live_losses[-100:]):.2f}")

def on_requested_mode(model, n_per_mode=100):
    # Share of samples nearest to the requested mode, for each of the 8 modes.
    requested = torch.eye(8).repeat_interleave(n_per_mode, dim=0)                    # (800, 8)
    samples = generate(model, len(requested), condition=requested, seed=0).x
    nearest = distance_to_nearest_mode(samples)[1]
    return [float(np.mean(nearest[m * n_per_mode:(m + 1) * n_per_mode] == m)) for m in range(8)]

print("live model, share on the requested mode:", [round(h, 2) for h in on_requested_mode(live_onehot)])
unconditional = generate(live_onehot, 800, condition=torch.zeros(8), seed=0).x
print("live model, 'no class' code, samples nearest each mode:", np.bincount(distance_to_nearest_mode(unconditional)[1], minlength=8).tolist())

# %% [markdown]
# After only 300 steps nearly every sample lands on the blob it was asked for (the first printed
# list). The "no class" code, which 10% of the training rows carried, gives samples on all
# eight blobs (the second list), though less evenly than the data after so few steps.
#
# The shipped one-hot checkpoint was trained by the package's `train`, which runs the same step
# (`train(model, data, labels=labels, condition_dropout=...)`), for longer and without
# dropout. Each mode's samples are drawn in that mode's colour, over the data in the same colours.

# %%
onehot_models = pretrained.PretrainedModels("onehot")     # {base: checkpoint}, loaded on first use
onehot_model = onehot_models["gaussian"]
print("checkpoint, share on the requested mode:", [round(h, 2) for h in on_requested_mode(onehot_model)])
requested = torch.eye(8).repeat_interleave(150, dim=0)                 # (1200, 8): 150 rows per mode
by_mode = dict(enumerate(generate(onehot_model, 1200, condition=requested, seed=0).x.split(150)))
plot_conditional_samples_discrete(by_mode, real_data=data[:2000], real_labels=labels[:2000],
                                  title="one-hot conditioning, all eight modes")
plt.show()

# %% [markdown]
# Each colour lands on its own blob. How does the condition do it? The stream plots show the
# conditional field at $t = 0.5$ for four of the modes.

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), dpi=48)
for mode, ax in zip((0, 2, 4, 6), axes.flat):
    plot_velocity_field(onehot_model, 0.5, ax=ax, kind="stream", condition=torch.eye(8)[mode], n_grid=12,
                        density=0.4, data=data[labels == mode][:200], title=f"mode {mode}, t = 0.50")
    ax.label_outer()
fig.tight_layout()
plt.show()

# %% [markdown]
# For each mode, the streamlines converge on that mode's blob (drawn in red): the same point
# $x$ at the same time gets a different velocity depending on what we asked for. Pick a **mode**
# and a **base** below.

# %% tags=["nbval-ignore-output"]
widgets.mode_explorer(onehot_models, mode=0, base="gaussian")

# %% [markdown]
# ### 17.6.1 Example 2: Conditioning on the Continuous Radius
#
# A condition need not be a class. Here it is a real number, the distance $r = \|x_1\|$ of
# each data point from the origin, passed through its own small MLP:

# %%
print(inspect.getsource(ConditionalVelocityFieldRadius.__init__))

# %% [markdown]
# A model only knows the radii it saw often. The ring has radius 3 and its blobs have standard
# deviation 0.25, so most training radii lie close to 3, and a few stragglers lie much further
# out. The smallest and largest radius would call a radius "seen" that only a handful of
# training points had; `train` therefore stores the 1st to 99th percentile of the training radii
# with the model (`trained_radius_range`), and requests outside it count as **extrapolation**.

# %%
radius_models = pretrained.PretrainedModels("radius")     # {base: checkpoint}, loaded on first use
radius_model = radius_models["gaussian"]
training_points, _ = create_ring_gaussians(pretrained.recipes.DATA_SIZE, seed=pretrained.recipes.DATA_SEED)   # its training data
radii_seen = np.linalg.norm(training_points, axis=1)
print(f"the ring: radius {data_module.RING_RADIUS}, blob standard deviation {data_module.RING_STD}")
print(f"training radii: smallest {radii_seen.min():.2f}, 1st percentile {np.percentile(radii_seen, 1):.2f}, "
      f"99th percentile {np.percentile(radii_seen, 99):.2f}, largest {radii_seen.max():.2f}")
low, high = radius_model.trained_radius_range.tolist()
print(f"trained_radius_range stored with the model: {low:.2f} to {high:.2f}")

# %% [markdown]
# We ask for radii from 1.5 to 4.5. Look at the panels marked "extrapolation" (hollow markers,
# dashed circle): do their samples sit on the requested circle?

# %%
radii = [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
requested = torch.tensor(radii).repeat_interleave(150)[:, None]        # (1050, 1): 150 rows per radius
by_radius = dict(zip(radii, generate(radius_model, len(requested), condition=requested, seed=0).x.split(150)))
fig, axes = plt.subplots(1, len(radii), figsize=(2.6 * len(radii), 3.0), dpi=50)
for ax, (r, samples) in zip(axes, by_radius.items()):
    plot_conditional_samples_continuous({r: samples}, real_data=data[:1000], trained_range=(low, high), ax=ax)
    ax.set(xticks=[], yticks=[], xlabel="", ylabel="")
fig.tight_layout()
plt.show()
for r, samples in by_radius.items():
    label = "EXTRAPOLATION" if radius_model.is_extrapolation(r) else "inside the trained range"
    print(f"r = {r:.1f} ({label}): median distance of the samples from 0 = {samples.norm(dim=1).median():.2f}")

# %% [markdown]
# Inside the trained range the samples sit on the requested circle, still grouped into eight
# blobs because the data only has blobs. Outside it, the medians happen to land near the
# requested radius for 2.0, 4.0 and 4.5, and further off for 1.5 (1.69): the network continues
# smoothly from what it learned, but no training example ever checked any of these answers. That
# is what the hollow markers say: an answer to a question the model was seldom or never taught,
# to be treated as a guess. The smallest and largest training radii (2.16 and 4.03) would have
# called 2.0 a guess but 4.0 "seen", on the word of a handful of points.
#
# Drag the **radius** slider across and beyond the range.

# %% tags=["nbval-ignore-output"]
widgets.radius_explorer(radius_models, radius=3.0, base="gaussian")

# %% [markdown]
# ## 17.7 Summary
#
# Flow matching keeps the deterministic sampling of normalising flows and the stable regression
# training of diffusion models:
#
# | | Diffusion models | Continuous normalising flows | Flow matching |
# |---|---|---|---|
# | Dynamics | stochastic (SDE), or an equivalent ODE | deterministic (ODE) | deterministic (ODE) |
# | Training signal | regression on noise or score | maximum likelihood, with a Jacobian trace | regression on per-pair velocities |
# | ODE solve during training | no | yes, differentiated end to end | no |
# | Paths | noisy | whatever maximises likelihood, often curved | straight per pair; the learned (marginal) flow bends where pairs cross |
# | Sampling | many denoising steps | an ODE solve, steps set by how curved the flow is | an ODE solve; RK4 needed far fewer evaluations than Euler here (17.5.1) |
# | Training stability | very stable | can be unstable | very stable |
#
# A CNF also samples by solving an ODE: neither a CNF nor flow matching generates in one
# network pass. Flow matching's advantage is in training: no trace, no solver in the loop.
#
# Points to remember:
#
# - **Deterministic transport.** Flow matching learns a velocity field and samples by integrating an ODE from the base to the data.
# - **Simple training.** Regress $v_\theta(x_t, t)$ onto $x_1 - x_0$ for random pairs. By Lipman et al.'s result this has the same gradients as regressing onto the marginal field $u_t(x) = \mathbb{E}[x_1 - x_0 \mid x_t = x]$, so the network learns that average.
# - **The loss has a floor.** The per-pair targets spread around their average at every $x_t$; that spread is the floor, largest early in the flow (near $t = 0.15$). For the ring it is exactly computable, and how $t$ is drawn changes its value (uniform versus logit-normal), not the field being learned.
# - **Any base.** Gaussian, uniform or a word mark: the base only has to be easy to sample.
# - **Measure, don't eyeball.** W2 beside the data's own floor, the off-mode share and the per-mode counts together tell good samples from bad ones; the loss alone does not.
# - **Solvers.** RK4 reaches in a few steps what Euler needs many for, but on a ReLU network's field it falls well short of its textbook order.
# - **Conditions.** A class or a number becomes an extra input (with dropout, also the "no condition" input); outside the conditions seen often in training, the model extrapolates.
#
# The models here work in two dimensions. Real images live in thousands of dimensions, where
# these models get expensive; the next chapter combines them with the compressed
# representations learned by autoencoders, which gives latent diffusion and latent flow models.
