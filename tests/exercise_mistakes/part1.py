"""Typical wrong answers to part 1 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (1, 'path run backwards', """
        def interpolate_point(x0, x1, t):
            return t * x0 + (1 - t) * x1
     """),
    (1, 'target points backwards', """
        def target_velocity(x0, x1):
            return x0 - x1
     """),
    (1, 'sum instead of a weighted mean', """
        def interpolate_point(x0, x1, t):
            return x0 + t * x1
     """),
    (2, 'field pointing at the ring', """
        def field_at_0(x):
            return 3 * x / x.norm(dim=1, keepdim=True) - x
     """),
    (2, 'sign flipped at t = 1', """
        def field_at_1(x):
            return -x
     """),
    (2, 'zero field', """
        def field_at_0(x):
            return torch.zeros_like(x)
     """),
    (3, 'equal weights for every mode', """
        def marginal_velocity(x, t):
            var, c = (1 - t) ** 2 + t ** 2 * RING_STD ** 2, t * RING_STD ** 2 - (1 - t)
            return (CENTERS[None] + c / var * (x[:, None, :] - t * CENTERS[None])).mean(dim=1)
     """),
    (3, 'weights with variance 1', """
        def marginal_velocity(x, t):
            var, c = (1 - t) ** 2 + t ** 2 * RING_STD ** 2, t * RING_STD ** 2 - (1 - t)
            offset = x[:, None, :] - t * CENTERS[None]
            weights = torch.softmax(-(offset ** 2).sum(dim=2) / 2, dim=1)
            return (weights[:, :, None] * (CENTERS[None] + c / var * offset)).sum(dim=1)
     """),
    (3, 'no correction term', """
        def marginal_velocity(x, t):
            var = (1 - t) ** 2 + t ** 2 * RING_STD ** 2
            offset = x[:, None, :] - t * CENTERS[None]
            weights = torch.softmax(-(offset ** 2).sum(dim=2) / (2 * var), dim=1)
            return weights @ CENTERS
     """),
    (4, 'encodes forwards in time', """
        def encode(velocity, x1, n_steps):
            x = x1
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, 1 / n_steps)
            return x
     """),
    (4, 'field read at the forward times', """
        def encode(velocity, x1, n_steps):
            x = x1
            for k in range(n_steps):
                x = euler_step(velocity, x, k / n_steps, -1 / n_steps)
            return x
     """),
    (4, 'diffusion can be inverted the same way', """
        DIFFUSION_ANSWER = "a"
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (1, 'def interpolate_point(x0, x1, t):\n    return t * x0 + (1 - t) * x1\n', 'backwards'),
    (2, 'def field_at_0(x):\n    return 3 * x / x.norm(dim=1, keepdim=True) - x\n', 'E[x1] = 0'),
]
