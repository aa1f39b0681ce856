"""Typical wrong answers to part 1 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (1, 'the straight path instead of the trigonometric one', """
        def trig_point(x0, x1, t):
            return (1 - t) * x0 + t * x1
     """),
    (1, "the straight path's velocity", """
        def trig_velocity(x0, x1, t):
            return x1 - x0
     """),
    (1, 'the chain rule forgotten', """
        def trig_velocity(x0, x1, t):
            angle = torch.pi * t / 2
            return torch.cos(angle) * x1 - torch.sin(angle) * x0
     """),
    (1, 'the derivative of the cosine without its minus sign', """
        def trig_velocity(x0, x1, t):
            angle = torch.pi * t / 2
            return torch.pi / 2 * (torch.cos(angle) * x1 + torch.sin(angle) * x0)
     """),
    (2, 'field pointing at the ring', """
        def field_at_0(x):
            return 3 * x / x.norm(dim=1, keepdim=True) - x
     """),
    (2, 'sign flipped at t = 1', """
        def field_at_1(x):
            return -x
     """),
    (2, "the data's sample mean for E[x1]", """
        def field_at_0(x):
            return torch.from_numpy(create_ring_gaussians(2000, seed=0)[0]).float().mean(dim=0) - x
     """),
    (2, 'zero field', """
        def field_at_0(x):
            return torch.zeros_like(x)
     """),
    (3, "the blob's mean velocity, x_t ignored", """
        def blob_velocity(x, t, mu, s):
            return mu.expand_as(x)
     """),
    (3, 'E[x1 | x_t] - x_t not divided by 1 - t', """
        def blob_velocity(x, t, mu, s):
            spread = (1 - t) ** 2 + t ** 2 * s ** 2
            return mu + t * s ** 2 / spread * (x - t * mu) - x
     """),
    (3, 'equal weights for every blob', """
        def marginal_velocity(x, t):
            return torch.stack([blob_velocity(x, t, mu, RING_STD) for mu in CENTERS], dim=1).mean(dim=1)
     """),
    (3, 'weights with variance 1', """
        def marginal_velocity(x, t):
            logits = torch.stack([-((x - t * mu) ** 2).sum(dim=1) / 2 for mu in CENTERS], dim=1)
            per_blob = torch.stack([blob_velocity(x, t, mu, RING_STD) for mu in CENTERS], dim=1)
            return (torch.softmax(logits, dim=1)[:, :, None] * per_blob).sum(dim=1)
     """),
    (4, 'encodes forwards in time', """
        def encode(velocity, x1, n_steps):
            x = x1
            for k in range(n_steps):
                x = x + velocity(x, k / n_steps) / n_steps
            return x
     """),
    (4, 'field read at the forward times', """
        def encode(velocity, x1, n_steps):
            x = x1
            for k in range(n_steps):
                x = x - velocity(x, k / n_steps) / n_steps
            return x
     """),
    (4, 'diffusion undone step by step', """
        DIFFUSION_ANSWER = "a"
     """),
    (4, 'diffusion reaches the noise-free limit', """
        DIFFUSION_ANSWER = "c"
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (1, 'def trig_velocity(x0, x1, t):\n    return x1 - x0\n', "the straight path's velocity"),
    (1, 'def trig_velocity(x0, x1, t):\n    a = torch.pi * t / 2\n    return torch.cos(a) * x1 - torch.sin(a) * x0\n',
     "chain rule"),
    (2, 'def field_at_0(x):\n    return 3 * x / x.norm(dim=1, keepdim=True) - x\n', 'pointing at the ring'),
    (2, 'def field_at_1(x):\n    return torch.zeros_like(x)\n', 'zero everywhere'),
    (2, 'def field_at_0(x):\n    data = create_ring_gaussians(2000, seed=0)[0]\n'
        '    return torch.from_numpy(data).float().mean(dim=0) - x\n',
     'a sample mean for an exact mean'),
    (3, 'def marginal_velocity(x, t):\n    return torch.stack([blob_velocity(x, t, mu, RING_STD) for mu in CENTERS], '
        'dim=1).mean(dim=1)\n', 'equal weights for every blob'),
    (3, 'def blob_velocity(x, t, mu, s):\n    v = (1 - t) ** 2 + t ** 2 * s ** 2\n'
        '    return mu + t * s ** 2 / v * (x - t * mu) - x\n', 'not divided by 1 - t'),
    (4, 'def encode(velocity, x1, n_steps):\n    x = x1\n    for k in range(n_steps):\n'
        '        x = x + velocity(x, k / n_steps) / n_steps\n    return x\n', 'integrating forwards'),
    (4, 'DIFFUSION_ANSWER = "c"\n', 'noise-free limit'),
]
