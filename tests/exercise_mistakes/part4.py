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
    (16, 'a code that names no mode', """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = torch.full((1, 8), 1 / 8)
            return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]
     """),
    (16, 'starts from the uniform base', """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = nn.functional.one_hot(torch.tensor([mode]), 8).float()
            x0 = sample_base("uniform", n_samples, seed=seed)
            return solve_ode(model, x0, n_steps=n_steps, condition=code).x
     """),
    (16, 'the model called without its code', """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            return euler_sample(lambda x, t: model(x, t), n_samples, n_steps, seed)[-1]
     """),
    (16, 'whole trajectory returned', """
        def sample_mode(model, mode, n_samples, n_steps, seed):
            code = nn.functional.one_hot(torch.tensor([mode]), 8).float()
            return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)
     """),
    (17, 'fields swapped', """
        def guided_field(mode, w):
            def velocity(x, t):
                var, c = EXACT.moments(t)
                mu = EXACT.centers[mode]
                u, v = EXACT(x, t).double(), mu + c / var * (x.double() - t * mu)
                return v + w * (u - v)
            return velocity
     """),
    (17, 'the (1 + w) convention with this w', """
        def guided_field(mode, w):
            def velocity(x, t):
                var, c = EXACT.moments(t)
                mu = EXACT.centers[mode]
                u, v = EXACT(x, t).double(), mu + c / var * (x.double() - t * mu)
                return (1 + w) * v - w * u
            return velocity
     """),
    (17, 'scales the conditional field', """
        def guided_field(mode, w):
            def velocity(x, t):
                var, c = EXACT.moments(t)
                mu = EXACT.centers[mode]
                return w * (mu + c / var * (x.double() - t * mu))
            return velocity
     """),
    (17, 'conditional field that ignores the mode', """
        def guided_field(mode, w):
            def velocity(x, t):
                u, v = EXACT(x, t), EXACT(x, t)
                return u + w * (v - u)
            return velocity
     """),
    (17, 'field of the next mode', """
        def guided_field(mode, w):
            def velocity(x, t):
                var, c = EXACT.moments(t)
                mu = EXACT.centers[(mode + 1) % 8]
                u, v = EXACT(x, t).double(), mu + c / var * (x.double() - t * mu)
                return u + w * (v - u)
            return velocity
     """),
    (17, 'share near any mode', """
        def share_and_spread(samples, mode):
            distance, _ = distance_to_nearest_mode(samples)
            return float((distance <= 3 * RING_STD).mean()), float(samples.std(dim=0).mean())
     """),
    (17, 'share as a percentage', """
        def share_and_spread(samples, mode):
            near = (samples.double() - EXACT.centers[mode]).norm(dim=1) <= 3 * RING_STD
            return 100 * float(near.double().mean()), float(samples.std(dim=0).mean())
     """),
    (17, 'spread as the distance to the centre', """
        def share_and_spread(samples, mode):
            offset = (samples.double() - EXACT.centers[mode]).norm(dim=1)
            return float((offset <= 3 * RING_STD).double().mean()), float(offset.pow(2).mean().sqrt())
     """),
    (17, 'predicted share given in percent', """
        PREDICTED_SHARE_W0 = 12.5
     """),
    (17, 'predicts that every sample reaches the mode at w = 0', """
        PREDICTED_SHARE_W0 = 1.0
     """),
    (17, 'predicts a crowding at the mode for w = 4', """
        W4_PREDICTION = "c"
     """),
    (18, 'min and max of the training radii', """
        def seen_range(radii):
            return radii.min(), radii.max()
     """),
    (18, 'percentile given fractions', """
        def seen_range(radii):
            return np.percentile(radii, 0.01), np.percentile(radii, 0.99)
     """),
    (18, 'low and high swapped', """
        def seen_range(radii):
            return np.percentile(radii, 99), np.percentile(radii, 1)
     """),
    (18, 'flags inverted', """
        def flag_extrapolation(requested, low, high):
            return [low <= r <= high for r in requested]
     """),
    (18, 'only radii above the range flagged', """
        def flag_extrapolation(requested, low, high):
            return [r > high for r in requested]
     """),
    (18, 'predicts the radii outside the min-max range', """
        RARE_PREDICTION = "b"
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (16, 'def sample_mode(model, mode, n_samples, n_steps, seed):\n'
         '    code = torch.zeros(1, 8)\n'
         '    return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]\n',
     'not told the mode'),
    (16, 'def sample_mode(model, mode, n_samples, n_steps, seed):\n'
         '    code = nn.functional.one_hot(torch.tensor([mode]), 8).float()\n'
         '    return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)\n',
     'the whole trajectory returned'),
    (16, 'def sample_mode(model, mode, n_samples, n_steps, seed):\n'
         '    code = nn.functional.one_hot(torch.tensor([(mode + 1) % 8]), 8).float()\n'
         '    return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]\n',
     'the code of another mode'),
    (16, 'def sample_mode(model, mode, n_samples, n_steps, seed):\n'
         '    return euler_sample(lambda x, t: model(x, t), n_samples, n_steps, seed)[-1]\n',
     'the model called without its code'),
    (16, 'def sample_mode(model, mode, n_samples, n_steps, seed):\n'
         '    code = torch.full((1, 8), 1 / 8)\n'
         '    return euler_sample(lambda x, t: model(x, t, code), n_samples, n_steps, seed)[-1]\n',
     'a code the model does not know'),
    (17, 'def guided_field(mode, w):\n'
         '    def velocity(x, t):\n'
         '        var, c = EXACT.moments(t)\n'
         '        mu = EXACT.centers[mode]\n'
         '        u, v = EXACT(x, t).double(), mu + c / var * (x.double() - t * mu)\n'
         '        return (1 + w) * v - w * u\n'
         '    return velocity\n',
     "the other convention's w"),
    (17, 'def guided_field(mode, w):\n'
         '    def velocity(x, t):\n'
         '        var, c = EXACT.moments(t)\n'
         '        mu = EXACT.centers[mode]\n'
         '        u, v = EXACT(x, t).double(), mu + c / var * (x.double() - t * mu)\n'
         '        return v + w * (u - v)\n'
         '    return velocity\n',
     'the two fields swapped'),
    (17, 'def guided_field(mode, w):\n'
         '    return lambda x, t: EXACT(x, t)\n',
     'the conditional field ignores the mode'),
    (17, 'def guided_field(mode, w):\n'
         '    def velocity(x, t):\n'
         '        var, c = EXACT.moments(t)\n'
         '        mu = EXACT.centers[(mode + 1) % 8]\n'
         '        u, v = EXACT(x, t).double(), mu + c / var * (x.double() - t * mu)\n'
         '        return u + w * (v - u)\n'
         '    return velocity\n',
     'the field of another mode'),
    (17, 'def share_and_spread(samples, mode):\n'
         '    offset = (samples.double() - EXACT.centers[mode]).norm(dim=1)\n'
         '    return float((offset <= 3 * RING_STD).double().mean()), float(offset.pow(2).mean().sqrt())\n',
     "the distance to the mode's centre"),
    (17, 'PREDICTED_SHARE_W0 = 12.5\n', 'a percentage where a fraction is asked for'),
    (18, 'def seen_range(radii):\n    return radii.min(), radii.max()\n', 'straggler'),
    (18, 'def seen_range(radii):\n    return np.percentile(radii, 99), np.percentile(radii, 1)\n',
     'low and high swapped'),
    (18, 'def flag_extrapolation(requested, low, high):\n    return [r > high for r in requested]\n',
     'only one side of the range flagged'),
]
