"""Typical wrong answers to part 2 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (5, 'target x0 - x1 in the loss', """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x0 - x1)) ** 2).mean()
     """),
    (5, 'model evaluated at the noise', """
        def fm_loss(model, x0, x1, t):
            return ((model(x0, t) - (x1 - x0)) ** 2).mean()
     """),
    (5, 'loss returned as a float', """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x1 - x0)) ** 2).mean().item()
     """),
    (5, 'sum over the batch', """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x1 - x0)) ** 2).sum()
     """),
    (6, "blames the network's size", """
        ANSWER = "a"
     """),
    (6, "blames Euler's method", """
        ANSWER = "d"
     """),
    (6, "floor from the noise's variance", """
        def loss_floor_at_t0(n_pairs=100_000, seed=0):
            return 1.0
     """),
    (6, 'floor of zero', """
        def loss_floor_at_t0(n_pairs=100_000, seed=0):
            return 0.0
     """),
    (8, 'untrained model', """
        my_model, my_losses = VelocityField(), [4.6] * 100
     """),
    (8, 'target x0 - x1 in the training loss', """
        def fm_loss(model, x0, x1, t):
            x_t = (1 - t) * x0 + t * x1
            return ((model(x_t, t) - (x0 - x1)) ** 2).mean()
        my_model, my_losses = train_my_model(n_steps=600)
     """),
    (8, 'over the step budget', """
        my_losses = [3.0] * 3000
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
]
