"""Typical wrong answers to part 4 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (16, 'code of the wrong mode', """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = nn.functional.one_hot(torch.tensor([(mode + 1) % 8]), 8).float()
            return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]
     """),
    (16, 'no condition (all-zero code)', """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = torch.zeros(1, 8)
            return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]
     """),
    (16, 'starts from the uniform base', """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = nn.functional.one_hot(torch.tensor([mode]), 8).float()
            x = sample_base("uniform", n_samples, seed=seed)
            for k in range(n_steps):
                x = euler_step(lambda y, s: model(y, s, code), x, k / n_steps, 1 / n_steps)
            return x
     """),
    (17, 'fields swapped', """
        def guided_velocity(model, code, w):
            def velocity(x, t):
                v_cond, v_uncond = model(x, t, code), model(x, t, torch.zeros_like(code))
                return v_cond + w * (v_uncond - v_cond)
            return velocity
     """),
    (17, 'scales the conditional field', """
        def guided_velocity(model, code, w):
            return lambda x, t: w * model(x, t, code)
     """),
    (17, 'large w pulls to the centre', """
        LARGE_W_ANSWER = "d"
     """),
    (17, 'large w changes nothing', """
        LARGE_W_ANSWER = "b"
     """),
    (18, 'min and max of the training radii', """
        def seen_range(radii):
            return radii.min(), radii.max()
     """),
    (18, 'percentile given fractions', """
        def seen_range(radii):
            return np.percentile(radii, 0.01), np.percentile(radii, 0.99)
     """),
    (18, 'flags inverted', """
        def flag_extrapolation(requested, low, high):
            return [low <= r <= high for r in requested]
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (18, 'def seen_range(radii):\n    return radii.min(), radii.max()\n', 'straggler'),
]
