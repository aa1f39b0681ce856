"""Typical wrong answers to part 3 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (9, 'field evaluated at the end of the step', """
        def euler_step(velocity, x, t, h):
            return x + h * velocity(x, t + h)
     """),
    (9, 'step not scaled by h', """
        def euler_step(velocity, x, t, h):
            return x + velocity(x, t)
     """),
    (9, 'sampler starts from the data', """
        def euler_sample(velocity, n_samples, n_steps, seed):
            x = torch.from_numpy(create_ring_gaussians(n_samples, seed=seed)[0])
            trajectory = [x]
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, 1 / n_steps)
                trajectory.append(x)
            return torch.stack(trajectory)
     """),
    (9, 'sampler runs time backwards', """
        def euler_sample(velocity, n_samples, n_steps, seed):
            x = sample_base("gaussian", n_samples, seed=seed)
            trajectory = [x]
            for k in range(n_steps):
                x = euler_step(velocity, x, 1 - k / n_steps, -1 / n_steps)
                trajectory.append(x)
            return torch.stack(trajectory)
     """),
    (9, 'sampler drops the starting point', """
        def euler_sample(velocity, n_samples, n_steps, seed):
            x = sample_base("gaussian", n_samples, seed=seed)
            trajectory = []
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, 1 / n_steps)
                trajectory.append(x)
            return torch.stack(trajectory)
     """),
    (11, 'equal weights', """
        def rk4_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t + h / 2)
            k3 = velocity(x + h / 2 * k2, t + h / 2)
            k4 = velocity(x + h * k3, t + h)
            return x + h / 4 * (k1 + k2 + k3 + k4)
     """),
    (11, 'middle slopes at the start time', """
        def rk4_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t)
            k3 = velocity(x + h / 2 * k2, t)
            k4 = velocity(x + h * k3, t + h)
            return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
     """),
    (11, 'midpoint instead of RK4', """
        def rk4_step(velocity, x, t, h):
            return x + h * velocity(x + h / 2 * velocity(x, t), t + h / 2)
     """),
    (12, 'ignores the step count', """
        def off_mode_by_steps(model, step_counts, n_samples, seed):
            return [off_mode_fraction(euler_sample(model, n_samples, 1, seed)[-1]) for k in step_counts]
     """),
    (12, 'percentages', """
        def off_mode_by_steps(model, step_counts, n_samples, seed):
            return [100 * off_mode_fraction(euler_sample(model, n_samples, k, seed)[-1]) for k in step_counts]
     """),
    (12, 'the largest step count as the fewest', """
        FEWEST_STEPS = STEP_COUNTS[-1]
     """),
    (10, 'no move', """
        def one_step_endpoint(x0):
            return x0
     """),
    (10, 'step towards the ring', """
        def one_step_endpoint(x0):
            return 3 * x0 / x0.norm(dim=1, keepdim=True)
     """),
    (10, 'off-mode share of the data', """
        ONE_STEP_OFF_MODE = 0.011
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (9, 'def euler_step(velocity, x, t, h):\n    return x + h * velocity(x, t + h)\n', 'end of the step'),
]
