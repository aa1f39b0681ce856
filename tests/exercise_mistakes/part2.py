"""Typical wrong answers to part 2 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (5, 'the conditional loss alone', """
        def loss_constant(model, n_pairs, seed):
            generator = torch.Generator().manual_seed(seed)
            x0 = torch.randn(n_pairs, 2, generator=generator)
            x1 = torch.from_numpy(create_ring_gaussians(n_pairs, generator=generator)[0])
            t = torch.rand(n_pairs, 1, generator=generator)
            with torch.no_grad():
                return float(((model((1 - t) * x0 + t * x1, t) - (x1 - x0)) ** 2).mean())
     """),
    (5, 'the marginal loss alone', """
        def loss_constant(model, n_pairs, seed):
            generator = torch.Generator().manual_seed(seed)
            x0 = torch.randn(n_pairs, 2, generator=generator)
            x1 = torch.from_numpy(create_ring_gaussians(n_pairs, generator=generator)[0])
            t = torch.rand(n_pairs, 1, generator=generator)
            x_t = (1 - t) * x0 + t * x1
            with torch.no_grad():
                return float(((model(x_t, t) - exact_field(x_t, t)) ** 2).mean())
     """),
    (5, 'a sum over the coordinates', """
        def loss_constant(model, n_pairs, seed):
            generator = torch.Generator().manual_seed(seed)
            x0 = torch.randn(n_pairs, 2, generator=generator)
            x1 = torch.from_numpy(create_ring_gaussians(n_pairs, generator=generator)[0])
            t = torch.rand(n_pairs, 1, generator=generator)
            x_t = (1 - t) * x0 + t * x1
            return float(((exact_field(x_t, t) - (x1 - x0)) ** 2).sum(dim=1).mean())
     """),
    (5, 'one time instead of t ~ U[0, 1]', """
        def loss_constant(model, n_pairs, seed):
            generator = torch.Generator().manual_seed(seed)
            x0 = torch.randn(n_pairs, 2, generator=generator)
            x1 = torch.from_numpy(create_ring_gaussians(n_pairs, generator=generator)[0])
            x_t = (x0 + x1) / 2
            return float(((exact_field(x_t, 0.5) - (x1 - x0)) ** 2).mean())
     """),
    (5, "exercise 3's float-t marginal_velocity fed per-pair times", """
        def loss_constant(model, n_pairs, seed):
            generator = torch.Generator().manual_seed(seed)
            x0 = torch.randn(n_pairs, 2, generator=generator)
            x1 = torch.from_numpy(create_ring_gaussians(n_pairs, generator=generator)[0])
            t = torch.rand(n_pairs, 1, generator=generator)
            x_t = (1 - t) * x0 + t * x1
            with torch.no_grad():
                v = model(x_t, t)
            return float(((v - (x1 - x0)) ** 2).mean() - ((v - marginal_velocity(x_t, t)) ** 2).mean())
     """),
    (6, 'the target is the ground truth, so the fit is unfinished', """
        LOSS_FLOOR_ANSWER = "b"
     """),
    (6, "blames the network's size", """
        LOSS_FLOOR_ANSWER = "c"
     """),
    (6, "blames Euler's method", """
        LOSS_FLOOR_ANSWER = "d"
     """),
    (7, 'a one-hot floor of zero', """
        PREDICTED_FLOOR_ONEHOT = 0.0
     """),
    (7, 'the standard deviation for the variance', """
        PREDICTED_FLOOR_ONEHOT = 0.25
     """),
    (7, "the one-hot model's measured loss taken for its floor", """
        PREDICTED_FLOOR_ONEHOT = 0.102
     """),
    (7, 'the conditional floor equal to the unconditional one', """
        PREDICTED_FLOOR_ONEHOT = 4.5625
     """),
    (7, 'the loss at t = 1', """
        def loss_at_t0(model, x0, x1, onehot=None):
            t = torch.ones(len(x0), 1)
            with torch.no_grad():
                v = model(x0, t) if onehot is None else model(x0, t, onehot)
            return float(((v - (x1 - x0)) ** 2).mean())
     """),
    (7, 'a sum over the coordinates', """
        def loss_at_t0(model, x0, x1, onehot=None):
            t = torch.zeros(len(x0), 1)
            with torch.no_grad():
                v = model(x0, t) if onehot is None else model(x0, t, onehot)
            return float(((v - (x1 - x0)) ** 2).sum(dim=1).mean())
     """),
    (8, 'untrained model', """
        my_model, my_losses = VelocityField(), [4.6] * 100
     """),
    (8, 'the model given x1 instead of x_t', """
        def fm_loss(model, x0, x1, t):
            return ((model(x1, t) - (x1 - x0)) ** 2).mean()
     """),
    (8, 'target x0 - x1 in the loss', """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x0 - x1)) ** 2).mean()
     """),
    (8, 'loss returned as a float', """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x1 - x0)) ** 2).mean().item()
     """),
    (8, 'optimizer.zero_grad() forgotten', """
        def train_my_model(n_steps=300, batch_size=256, lr=2e-3, seed=0):
            torch.manual_seed(seed)
            model = VelocityField()
            points = torch.from_numpy(create_ring_gaussians(8000, seed=0)[0])
            generator = torch.Generator().manual_seed(seed)
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            losses = []
            for _ in range(n_steps):
                x1 = points[torch.randint(len(points), (batch_size,), generator=generator)]
                x0 = torch.randn(batch_size, 2, generator=generator)
                t = torch.rand(batch_size, 1, generator=generator)
                loss = fm_loss(model, x0, x1, t)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            return model.eval(), losses
        my_model, my_losses = train_my_model()
     """),
    (8, 'over the step budget', """
        my_losses = [3.0] * 3000
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (7, 'PREDICTED_FLOOR_UNCONDITIONAL = 4.631\n', "the shipped model's loss for its floor"),
    (7, 'PREDICTED_FLOOR_UNCONDITIONAL = 4.5\n', "the blobs' own spread left out"),
    (5, 'def loss_constant(model, n_pairs, seed):\n    g = torch.Generator().manual_seed(seed)\n'
        '    x0 = torch.randn(n_pairs, 2, generator=g)\n'
        '    x1 = torch.from_numpy(create_ring_gaussians(n_pairs, generator=g)[0])\n'
        '    t = torch.rand(n_pairs, 1, generator=g)\n'
        '    with torch.no_grad():\n'
        '        return float(((model((1 - t) * x0 + t * x1, t) - (x1 - x0)) ** 2).mean())\n',
     'the conditional loss alone'),
    (5, 'def loss_constant(model, n_pairs, seed):\n    g = torch.Generator().manual_seed(seed)\n'
        '    x0 = torch.randn(n_pairs, 2, generator=g)\n'
        '    x1 = torch.from_numpy(create_ring_gaussians(n_pairs, generator=g)[0])\n'
        '    t = torch.rand(n_pairs, 1, generator=g)\n'
        '    x_t = (1 - t) * x0 + t * x1\n'
        '    v = model(x_t, t).detach()\n'
        '    return float(((v - (x1 - x0)) ** 2).mean() - ((v - marginal_velocity(x_t, t)) ** 2).mean())\n',
     'a field that takes one float t'),
    (6, 'LOSS_FLOOR_ANSWER = "b"\n', 'exact field'),
    (7, 'PREDICTED_FLOOR_ONEHOT = 0.0\n', 'a floor of zero'),
    (7, 'PREDICTED_FLOOR_ONEHOT = 0.25\n', 'the standard deviation for the variance'),
    (7, 'PREDICTED_FLOOR_ONEHOT = 0.102\n', "the shipped model's loss for its floor"),
    (8, 'def fm_loss(model, x0, x1, t):\n    return ((model(x1, t) - (x1 - x0)) ** 2).mean()\n',
     'the model given x1 instead of x_t'),
    (8, 'def train_my_model(n_steps=300, batch_size=256, lr=2e-3, seed=0):\n'
        '    torch.manual_seed(seed)\n    model = VelocityField()\n'
        '    points = torch.from_numpy(create_ring_gaussians(8000, seed=0)[0])\n'
        '    generator = torch.Generator().manual_seed(seed)\n'
        '    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n    losses = []\n'
        '    for _ in range(n_steps):\n'
        '        x1 = points[torch.randint(len(points), (batch_size,), generator=generator)]\n'
        '        x0 = torch.randn(batch_size, 2, generator=generator)\n'
        '        t = torch.rand(batch_size, 1, generator=generator)\n'
        '        loss = fm_loss(model, x0, x1, t)\n        loss.backward()\n        optimizer.step()\n'
        '        losses.append(loss.item())\n    return model.eval(), losses\n'
        'my_model, my_losses = train_my_model()\n', 'optimizer.zero_grad() forgotten'),
]
