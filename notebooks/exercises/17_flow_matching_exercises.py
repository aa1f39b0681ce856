# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation,-kernelspec
# ---

# %% [markdown]
# # 17 Flow matching: exercises
#
# Eight exercises that walk through the learning objectives of section 17.1: the straight path and
# its velocity, the regression loss, sampling by solving the ODE (Euler and RK4), conditional
# sampling, how many steps a sampler needs, why the loss never reaches zero, and optimal transport
# pairing.
#
# **How to work.** In the student copy (`17_flow_matching_exercises_student.ipynb`) each answer is a
# line `raise NotImplementedError(...)`. Replace it with your code and run the **check cell** under
# it. A right answer prints one line starting with `Correct:`. A wrong one stops with an
# `AssertionError` that says what was expected, what your code returned, and often which typical
# mistake it looks like. Run the cells from the top: later exercises reuse your earlier functions.
# Everything runs on the CPU in well under a minute.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from gen_models_utilities import (create_ring_gaussians, device, off_mode_fraction, plot_conditional_samples_discrete,
                                  plot_pairs, plot_samples, sample_base, set_seed, solve_ode, use_book_style)
from gen_models_utilities import exercise_checks as checks
from gen_models_utilities.checkpoints import load_pretrained

set_seed(0)
use_book_style()
print(f"device: {device}")

# %% [markdown]
# Two trained models ship with the package, so no exercise has to wait for training: `fm_model`
# carries the standard Gaussian to the ring of eight Gaussians, and `onehot_model` does the same for
# one chosen mode, given as a one-hot code. We keep everything on the CPU, where the checks run.

# %%
fm_model, fm_info = load_pretrained("fm", "gaussian")               # v(x, t)
onehot_model, onehot_info = load_pretrained("onehot", "gaussian")   # v(x, t, one-hot mode)
data, labels = create_ring_gaussians(2000, seed=0)
print(f"fm_gaussian: {fm_info['steps']} training steps, onehot_gaussian: {onehot_info['steps']} training steps")


# %% [markdown] tags=["exercise-1"]
# ## Exercise 1 (17.3): the path and its velocity
#
# Pair a base point $x_0$ with a data point $x_1$. Flow matching moves along the straight line
# between them: at time $t \in [0, 1]$ the point is $x_t = (1 - t)\,x_0 + t\,x_1$.
#
# Write `interpolate_point(x0, x1, t)`, returning $x_t$, and `target_velocity(x0, x1)`, returning
# $\frac{d x_t}{dt}$, the velocity the network will be trained to predict. Shapes: `x0`, `x1`
# are `(B, 2)`, `t` is `(B, 1)`.

# %% tags=["exercise-1", "solution"]
def interpolate_point(x0, x1, t):
    """Point on the straight path at time t: x0, x1 (B, 2), t (B, 1) -> (B, 2)."""
    ### BEGIN SOLUTION
    return (1 - t) * x0 + t * x1
    ### END SOLUTION


def target_velocity(x0, x1):
    """Velocity along the straight path from x0 to x1: (B, 2), (B, 2) -> (B, 2)."""
    ### BEGIN SOLUTION
    return x1 - x0
    ### END SOLUTION


# %% tags=["exercise-1", "check"]
checks.check_path(interpolate_point, target_velocity)


# %% [markdown] tags=["exercise-2"]
# ## Exercise 2 (17.4): the loss
#
# Training is regression: the network $v_\theta(x_t, t)$ should predict the velocity of the pair
# that produced $x_t$. Write `fm_loss(model, x0, x1, t)`: build $x_t$ with your
# `interpolate_point`, call `model(x_t, t)`, and return the mean squared error to your
# `target_velocity`, averaged over the batch and both coordinates. Return a tensor (not a float),
# so that `loss.backward()` can train the model.

# %% tags=["exercise-2", "solution"]
def fm_loss(model, x0, x1, t):
    """Flow matching loss of model on one batch: x0, x1 (B, 2), t (B, 1) -> scalar tensor."""
    ### BEGIN SOLUTION
    x_t = interpolate_point(x0, x1, t)
    return ((model(x_t, t) - target_velocity(x0, x1)) ** 2).mean()
    ### END SOLUTION


# %% tags=["exercise-2", "check"]
checks.check_loss(fm_loss)


# %% [markdown] tags=["exercise-3"]
# ## Exercise 3 (17.5): one Euler step and a whole sampler
#
# To sample, start at $x_0$ from the base and follow $\frac{dx}{dt} = v(x, t)$ from $t = 0$ to
# $t = 1$. Euler's method does it in steps of size $h$: $x \leftarrow x + h\,v(x, t)$,
# $t \leftarrow t + h$.
#
# 1. Write `euler_step(velocity, x, t, h)`. Here `velocity(x, t)` is any function of a `(B, 2)`
#    tensor and a float time; a model of the package can be passed as it is.
# 2. Write `euler_sample(velocity, n_samples, n_steps, seed)`: draw the start with
#    `sample_base("gaussian", n_samples, seed=seed)`, take `n_steps` equal steps with your
#    `euler_step`, and return the whole trajectory, a tensor `(n_steps + 1, n_samples, 2)` whose
#    first entry is the start and last entry the samples.

# %% tags=["exercise-3", "solution"]
def euler_step(velocity, x, t, h):
    """One Euler step of dx/dt = velocity(x, t): x (B, 2), floats t and h -> (B, 2)."""
    ### BEGIN SOLUTION
    return x + h * velocity(x, t)
    ### END SOLUTION


@torch.no_grad()
def euler_sample(velocity, n_samples, n_steps, seed):
    """Trajectory (n_steps + 1, n_samples, 2) of Euler steps from Gaussian noise (t = 0) to t = 1."""
    ### BEGIN SOLUTION
    x = sample_base("gaussian", n_samples, seed=seed)
    h = 1.0 / n_steps
    trajectory = [x]
    for k in range(n_steps):
        x = euler_step(velocity, x, k * h, h)
        trajectory.append(x)
    return torch.stack(trajectory)
    ### END SOLUTION


# %% tags=["exercise-3", "check"]
checks.check_euler(euler_step, euler_sample)

# %% [markdown]
# Your sampler now drives the trained model. The red points should sit on the eight grey blobs;
# the printed number is the share of samples more than three standard deviations from every mode
# (the data itself scores about 1.1%).

# %%
trajectory = euler_sample(fm_model, 1000, 50, seed=0)
plot_samples(trajectory[-1], data=data, title="your Euler sampler, 50 steps")
plt.show()
print(f"off every mode: {100 * off_mode_fraction(trajectory[-1]):.1f}%")


# %% [markdown]
# The samples cover all eight modes, with few points in between.

# %% [markdown] tags=["exercise-4"]
# ## Exercise 4 (17.5): a higher-order step (RK4)
#
# Euler trusts the velocity at the start of a step for the whole step. The classical Runge-Kutta
# method of order four samples four slopes and averages them:
#
# $k_1 = v(x, t)$, $\quad k_2 = v(x + \tfrac h2 k_1, t + \tfrac h2)$,
# $\quad k_3 = v(x + \tfrac h2 k_2, t + \tfrac h2)$, $\quad k_4 = v(x + h k_3, t + h)$,
#
# $x \leftarrow x + \tfrac h6 (k_1 + 2k_2 + 2k_3 + k_4)$.
#
# Write `rk4_step(velocity, x, t, h)`.

# %% tags=["exercise-4", "solution"]
def rk4_step(velocity, x, t, h):
    """One classical Runge-Kutta step of order four: x (B, 2), floats t and h -> (B, 2)."""
    ### BEGIN SOLUTION
    k1 = velocity(x, t)
    k2 = velocity(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = velocity(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = velocity(x + h * k3, t + h)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    ### END SOLUTION


# %% tags=["exercise-4", "check"]
checks.check_rk4(rk4_step)

# %% [markdown]
# Four RK4 steps cost sixteen network evaluations, as many as sixteen Euler steps. Which lands
# closer to the exact end points (computed with an adaptive solver)?

# %%
with torch.no_grad():
    x0 = sample_base("gaussian", 1000, seed=1)
    exact = solve_ode(fm_model, x0, method="dopri5").x
    for name, step, n_steps, evaluations in [("Euler", euler_step, 4, 4), ("Euler", euler_step, 16, 16),
                                             ("RK4", rk4_step, 4, 16)]:
        x, h = x0, 1.0 / n_steps
        for k in range(n_steps):
            x = step(fm_model, x, k * h, h)
        error = (x - exact).norm(dim=1).mean()
        print(f"{name:5s} {n_steps:2d} steps, {evaluations:2d} evaluations: mean distance to exact end {error:.3f}")


# %% [markdown]
# For the same cost RK4 lands much closer than Euler: a higher-order method pays off when the
# field is smooth, which a well-trained flow matching field is.

# %% [markdown] tags=["exercise-5"]
# ## Exercise 5 (17.6): conditional sampling for a chosen mode
#
# `onehot_model(x, t, c)` takes a one-hot code `c` of shape `(1, 8)` or `(B, 8)` that names the
# mode to generate (mode $k$ sits at angle $2\pi k / 8$ on the ring). Write
# `sample_mode(model, mode, n_samples, n_steps, seed)`, returning `(n_samples, 2)` samples of the
# requested mode: wrap the model in a `velocity(x, t)` that always passes the code, and reuse your
# `euler_sample` (same start, same steps).

# %% tags=["exercise-5", "solution"]
@torch.no_grad()
def sample_mode(model, mode, n_samples, n_steps, seed):
    """n_samples points of ring mode `mode` from a one-hot conditional model -> (n_samples, 2)."""
    ### BEGIN SOLUTION
    code = nn.functional.one_hot(torch.tensor([mode]), model.condition_dim).float()   # (1, 8)

    def velocity(x, t):
        return model(x, t, code)

    return euler_sample(velocity, n_samples, n_steps, seed)[-1]
    ### END SOLUTION


# %% tags=["exercise-5", "check"]
checks.check_conditional_sampling(sample_mode, onehot_model)

# %% [markdown]
# Asking for each mode in turn, the samples should take the colour of the mode they were asked for.

# %%
samples = {mode: sample_mode(onehot_model, mode, 150, 20, seed=mode) for mode in range(8)}
plot_conditional_samples_discrete(samples, real_data=data, real_labels=labels, title="one mode at a time")
plt.show()

# %% [markdown]
# Every colour lands on its own blob: the condition, not the starting noise, picks the mode.

# %% [markdown] tags=["exercise-6"]
# ## Exercise 6: how many steps does the sampler need?
#
# Fewer steps are cheaper but cut corners. Write `off_mode_by_steps(model, step_counts, n_samples,
# seed)`, returning a list with, for each step count, the fraction of `n_samples` Euler samples
# (from the same `seed`, with your `euler_sample`) that lie off every mode, as measured by
# `off_mode_fraction`. Then set `FEWEST_STEPS` to the smallest step count whose fraction is at most
# one percentage point (0.01) above the fraction at the largest step count.

# %% tags=["exercise-6", "solution"]
STEP_COUNTS = [1, 2, 4, 8, 16, 32, 64]


@torch.no_grad()
def off_mode_by_steps(model, step_counts, n_samples, seed):
    """Off-mode fraction of n_samples Euler samples for each number of steps in step_counts."""
    ### BEGIN SOLUTION
    return [off_mode_fraction(euler_sample(model, n_samples, n_steps, seed)[-1]) for n_steps in step_counts]
    ### END SOLUTION


fractions = off_mode_by_steps(fm_model, STEP_COUNTS, 1000, seed=0)
# FEWEST_STEPS: the first of STEP_COUNTS whose fraction is at most fractions[-1] + 0.01
### BEGIN SOLUTION
FEWEST_STEPS = next(k for k, f in zip(STEP_COUNTS, fractions) if f <= fractions[-1] + 0.01)
### END SOLUTION

# %% tags=["exercise-6", "check"]
checks.check_step_study(off_mode_by_steps, FEWEST_STEPS, fm_model, STEP_COUNTS)

# %% [markdown]
# The curve below shows where extra steps stop paying; the dashed line is the data's own rate.

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(STEP_COUNTS, [100 * f for f in fractions], "o-")
ax.axhline(1.1, ls="--", color="0.5", label="data itself")
ax.set(xscale="log", xlabel="Euler steps", ylabel="off every mode (%)", title="sample quality against steps")
ax.legend()
fig.tight_layout()
plt.show()
print("steps: " + ", ".join(f"{k}: {100 * f:.1f}%" for k, f in zip(STEP_COUNTS, fractions)))

# %% [markdown]
# One step sends every sample to the average of the data, far from every mode; a handful of steps
# recovers most of the quality, and beyond that the gain is small.

# %% [markdown] tags=["exercise-7"]
# ## Exercise 7 (17.4): why does the loss not reach zero?
#
# Even a well-trained flow matching model keeps a training loss far above zero. Why? Set `ANSWER`
# to the letter of the best explanation:
#
# - **(a)** The network is too small to represent the velocity field.
# - **(b)** The learning rate is too high; with enough steps the loss would reach zero.
# - **(c)** Different pairs pass through the same x_t at the same t with different velocities x1 - x0; the network only sees (x_t, t), so the best it can do is their average.
# - **(d)** Euler's method makes an error at every step, and that error shows up in the loss.
#
# Then back your answer with a number. At $t = 0$ the point $x_t = x_0$ says nothing about which
# data point it is paired with, so the best any model can predict there is
# $\mathbb{E}[x_1] - x_0$. Complete `loss_floor_at_t0` so that it returns the loss of that best
# prediction on many pairs (as a float).

# %% tags=["exercise-7", "solution"]
# ANSWER: one letter in quotes, for example ANSWER = "a"
### BEGIN SOLUTION
ANSWER = "c"
### END SOLUTION


def loss_floor_at_t0(n_pairs=100_000, seed=0):
    """Loss at t = 0 of the best possible prediction, mean(x1) - x0, estimated on n_pairs pairs."""
    x1 = torch.from_numpy(create_ring_gaussians(n_pairs, seed=seed)[0])
    x0 = sample_base("gaussian", n_pairs, seed=seed + 1)
    ### BEGIN SOLUTION
    best = x1.mean(dim=0) - x0
    return float(((best - target_velocity(x0, x1)) ** 2).mean())
    ### END SOLUTION


# %% tags=["exercise-7", "check"]
checks.check_loss_floor(ANSWER, loss_floor_at_t0())

# %% [markdown]
# The trained model meets this floor. Its loss, measured at fixed times with your `fm_loss`, is
# largest at $t = 0$, where it sits just above the floor you computed, and shrinks as $x_t$ gets closer to the
# data and gives more away about $x_1$. It never reaches zero.

# %%
with torch.no_grad():
    x1 = torch.from_numpy(create_ring_gaussians(20_000, seed=3)[0])
    x0 = sample_base("gaussian", 20_000, seed=4)
    for t_value in (0.0, 0.5, 0.9):
        t = torch.full((20_000, 1), t_value)
        print(f"t = {t_value}: loss of the trained model {float(fm_loss(fm_model, x0, x1, t)):.2f}")


# %% [markdown] tags=["exercise-8"]
# ## Exercise 8: minibatch optimal transport pairing
#
# The chapter pairs noise and data at random. Within one batch we can instead pair them so that
# the total squared distance $\sum_i \lVert x_0^{(\pi(i))} - x_1^{(i)} \rVert^2$ is smallest, an
# assignment problem. Write `ot_pairing(x0, x1)` returning `x0` re-ordered, so that its row `i`
# is paired with `x1[i]`. Solve it exactly, for instance with
# `scipy.optimize.linear_sum_assignment` on the matrix of squared distances (or with POT's
# `ot.emd`).

# %% tags=["exercise-8", "solution"]
def ot_pairing(x0, x1):
    """x0 (B, 2) re-ordered so that row i goes with x1[i] at the least total squared distance."""
    ### BEGIN SOLUTION
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(x1.double(), x0.double()) ** 2         # row i: x1[i], column j: x0[j]
    _, columns = linear_sum_assignment(cost.numpy())
    return x0[torch.as_tensor(columns)]
    ### END SOLUTION


# %% tags=["exercise-8", "check"]
checks.check_ot_pairing(ot_pairing)

# %% [markdown]
# Random pairs cross the picture; optimal pairs are short and rarely cross, so the paths to learn are straighter.

# %%
x0 = sample_base("gaussian", 256, seed=9)
x1 = torch.from_numpy(create_ring_gaussians(256, seed=10)[0])
paired = ot_pairing(x0, x1)
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
plot_pairs(x0, x1, n_lines=40, ax=axes[0], title="random pairs")
plot_pairs(paired, x1, n_lines=40, ax=axes[1], title="minibatch OT pairs")
fig.tight_layout()
plt.show()
for name, x in [("random", x0), ("OT", paired)]:
    print(f"{name:6s} mean squared pair distance {float(((x - x1) ** 2).sum(dim=1).mean()):.2f}")

# %% [markdown]
# Optimal pairs are several times shorter. Keep in mind that a batch is a small sample: pairing
# within batches straightens the paths, but the field it trains is not the exact optimal transport
# map between the two distributions.
