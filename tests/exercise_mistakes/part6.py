"""Typical wrong answers to part 6 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (22, 'velocity is the denoised point E[x1 | x]', """
        def velocity_from_noise(x, eps_hat, t):
            return (x - (1 - t) * eps_hat) / t
     """),
    (22, 'divides by 1 - t', """
        def velocity_from_noise(x, eps_hat, t):
            return (x - eps_hat) / (1 - t)
     """),
    (22, 'forgets the division by t', """
        def velocity_from_noise(x, eps_hat, t):
            return x - eps_hat
     """),
    (22, 'noise weight not squared', """
        def noise_loss_weight(t):
            return t
     """),
    (22, 'noise weight inverted', """
        def noise_loss_weight(t):
            return 1 / t ** 2
     """),
    (22, 'noise and data weights swapped', """
        def noise_loss_weight(t):
            return (1 - t) ** 2

        def data_loss_weight(t):
            return t ** 2
     """),
    (22, 'data weight not squared', """
        def data_loss_weight(t):
            return 1 - t
     """),
    (22, 'the network gets the flow point, not the diffusion point', """
        def diffusion_velocity(model, x, t):
            t = t.clamp(min=T_MIN)
            return velocity_from_noise(x, model(x, model.schedule.diffusion_time(t)), t)
     """),
    (22, 'diffusion time taken as 1 - t', """
        def diffusion_velocity(model, x, t):
            t = t.clamp(min=T_MIN)
            scale = 1 / torch.sqrt(t ** 2 + (1 - t) ** 2)
            return velocity_from_noise(x, model(scale * x, 1 - t), t)
     """),
    (22, 'divides by zero at t = 0', """
        def diffusion_velocity(model, x, t):
            scale = 1 / torch.sqrt(t ** 2 + (1 - t) ** 2)
            return velocity_from_noise(x, model(scale * x, model.schedule.diffusion_time(t)), t)
     """),
    (22, 'asks the network for s > 1 below T_MIN', """
        def diffusion_velocity(model, x, t):
            t = t.clamp(min=1e-4)
            scale = 1 / torch.sqrt(t ** 2 + (1 - t) ** 2)
            return velocity_from_noise(x, model(scale * x, model.schedule.diffusion_time(t)), t)

        @torch.no_grad()
        def sample_from_diffusion(model, x0, n_steps):
            return solve_ode(lambda x, t: diffusion_velocity(model, x, t), x0, n_steps, "rk4").x
     """),
    (22, 'Euler steps instead of RK4', """
        @torch.no_grad()
        def sample_from_diffusion(model, x0, n_steps):
            return solve_ode(lambda x, t: diffusion_velocity(model, x, t), x0, n_steps).x
     """),
    (22, 'returns the whole trajectory', """
        @torch.no_grad()
        def sample_from_diffusion(model, x0, n_steps):
            return solve_ode(lambda x, t: diffusion_velocity(model, x, t), x0, n_steps, "rk4",
                             return_trajectory=True).trajectory
     """),
    (22, 'returns the noise', """
        def sample_from_diffusion(model, x0, n_steps):
            return x0
     """),
    (23, 'prediction not a letter', """
        LIKELIHOOD_TREND = "it falls"
     """),
    (23, 'predicts a rise', """
        LIKELIHOOD_TREND = "a"
     """),
    (23, 'predicts straight paths, exact at two steps', """
        LIKELIHOOD_TREND = "b"
     """),
    (23, 'RK4 slopes weighted equally', """
        def rk4_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = velocity(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = velocity(x + h * k3, t + h)
            return x + h * (k1 + k2 + k3 + k4) / 4
     """),
    (23, "Kutta's three-stage step reused from exercise 11", """
        def rk4_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t + h / 2)
            k3 = velocity(x + h * (2 * k2 - k1), t + h)
            return x + h * (k1 + 4 * k2 + k3) / 6
     """),
    (23, 'RK4 written for a 2-wide state only', """
        def rk4_step(velocity, x, t, h):
            k1 = velocity(x[:, :2], t)
            k2 = velocity(x[:, :2] + 0.5 * h * k1, t + 0.5 * h)
            k3 = velocity(x[:, :2] + 0.5 * h * k2, t + 0.5 * h)
            k4 = velocity(x[:, :2] + h * k3, t + h)
            return x[:, :2] + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
     """),
    (23, 'divergence sums every Jacobian entry', """
        def exact_divergence(velocity, x, t):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                return torch.autograd.grad(velocity(x, t).sum(), x)[0].sum(dim=1)
     """),
    (23, 'divergence keeps only dv1/dx1', """
        def exact_divergence(velocity, x, t):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                return torch.autograd.grad(velocity(x, t)[:, 0].sum(), x)[0][:, 0]
     """),
    (23, 'log-density change with the wrong sign', """
        def flow_log_likelihood(model, x1, n_steps):
            def augmented(state, t):
                v = model(state[:, :2], t).detach()
                return torch.cat([v, exact_divergence(model, state[:, :2], t)[:, None]], dim=1)
            state = torch.cat([x1, torch.zeros(len(x1), 1)], dim=1)
            for k in range(n_steps):
                state = rk4_step(augmented, state, 1 - k / n_steps, -1 / n_steps)
            return -state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)
     """),
    (23, 'base density without its constant', """
        def flow_log_likelihood(model, x1, n_steps):
            def augmented(state, t):
                v = model(state[:, :2], t).detach()
                return torch.cat([v, exact_divergence(model, state[:, :2], t)[:, None]], dim=1)
            state = torch.cat([x1, torch.zeros(len(x1), 1)], dim=1)
            for k in range(n_steps):
                state = rk4_step(augmented, state, 1 - k / n_steps, -1 / n_steps)
            return state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1)
     """),
    (23, 'base density read at x1', """
        def flow_log_likelihood(model, x1, n_steps):
            def augmented(state, t):
                v = model(state[:, :2], t).detach()
                return torch.cat([v, exact_divergence(model, state[:, :2], t)[:, None]], dim=1)
            state = torch.cat([x1, torch.zeros(len(x1), 1)], dim=1)
            for k in range(n_steps):
                state = rk4_step(augmented, state, 1 - k / n_steps, -1 / n_steps)
            return state[:, 2] - 0.5 * (x1 ** 2).sum(dim=1) - np.log(2 * np.pi)
     """),
    (23, 'Euler steps on the augmented state', """
        def flow_log_likelihood(model, x1, n_steps):
            def augmented(state, t):
                v = model(state[:, :2], t).detach()
                return torch.cat([v, exact_divergence(model, state[:, :2], t)[:, None]], dim=1)
            state = torch.cat([x1, torch.zeros(len(x1), 1)], dim=1)
            for k in range(n_steps):
                state = state - augmented(state, 1 - k / n_steps) / n_steps
            return state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)
     """),
    (23, 'integrates forward from t = 0', """
        def flow_log_likelihood(model, x1, n_steps):
            def augmented(state, t):
                v = model(state[:, :2], t).detach()
                return torch.cat([v, exact_divergence(model, state[:, :2], t)[:, None]], dim=1)
            state = torch.cat([x1, torch.zeros(len(x1), 1)], dim=1)
            for k in range(n_steps):
                state = rk4_step(augmented, state, k / n_steps, 1 / n_steps)
            return state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)
     """),
    (23, 'steps backwards but reads the field at forward times', """
        def flow_log_likelihood(model, x1, n_steps):
            def augmented(state, t):
                v = model(state[:, :2], t).detach()
                return torch.cat([v, exact_divergence(model, state[:, :2], t)[:, None]], dim=1)
            state = torch.cat([x1, torch.zeros(len(x1), 1)], dim=1)
            for k in range(n_steps):
                state = rk4_step(augmented, state, k / n_steps, -1 / n_steps)
            return state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)
     """),
    (23, 'negative log-likelihoods in the table', """
        MEAN_LOG_LIKELIHOOD = {n: -value for n, value in MEAN_LOG_LIKELIHOOD.items()}
     """),
    (23, 'sums instead of means in the table', """
        MEAN_LOG_LIKELIHOOD = {n: 500 * value for n, value in MEAN_LOG_LIKELIHOOD.items()}
     """),
    (23, 'the table as a list', """
        MEAN_LOG_LIKELIHOOD = list(MEAN_LOG_LIKELIHOOD.values())
     """),
]

_RK4_LIKELIHOOD = """
def flow_log_likelihood(model, x1, n_steps):
    def augmented(state, t):
        v = model(state[:, :2], t).detach()
        return torch.cat([v, exact_divergence(model, state[:, :2], t)[:, None]], dim=1)
    state = torch.cat([x1, torch.zeros(len(x1), 1)], dim=1)
    for k in range(n_steps):
        state = rk4_step(augmented, state, 1 - k / n_steps, -1 / n_steps)
    return RESULT
"""

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (22, 'def velocity_from_noise(x, eps_hat, t):\n    return (x - (1 - t) * eps_hat) / t\n', 'the denoised point'),
    (22, 'def velocity_from_noise(x, eps_hat, t):\n    return (x - eps_hat) / (1 - t)\n', 'the wrong way round'),
    (22, 'def velocity_from_noise(x, eps_hat, t):\n    return x - eps_hat\n', 'division by t is missing'),
    (22, 'def noise_loss_weight(t):\n    return t\n', 'not its square'),
    (22, 'def noise_loss_weight(t):\n    return 1 / t ** 2\n', 'inverse weight'),
    (22, 'def noise_loss_weight(t):\n    return (1 - t) ** 2\n', 'weight of a data prediction'),
    (22, 'def data_loss_weight(t):\n    return t ** 2\n', 'weight of a noise prediction'),
    (22, 'def diffusion_velocity(model, x, t):\n    t = t.clamp(min=T_MIN)\n'
         '    return velocity_from_noise(x, model(x, model.schedule.diffusion_time(t)), t)\n', 'the flow point x_t'),
    (22, 'def diffusion_velocity(model, x, t):\n    t = t.clamp(min=T_MIN)\n'
         '    scale = 1 / torch.sqrt(t ** 2 + (1 - t) ** 2)\n'
         '    return velocity_from_noise(x, model(scale * x, 1 - t), t)\n', 's = 1 - t'),
    (22, 'def diffusion_velocity(model, x, t):\n    scale = 1 / torch.sqrt(t ** 2 + (1 - t) ** 2)\n'
         '    return velocity_from_noise(x, model(scale * x, model.schedule.diffusion_time(t)), t)\n', 'at t = 0'),
    (22, 'def diffusion_velocity(model, x, t):\n    t = t.clamp(min=1e-4)\n'
         '    scale = 1 / torch.sqrt(t ** 2 + (1 - t) ** 2)\n'
         '    return velocity_from_noise(x, model(scale * x, model.schedule.diffusion_time(t)), t)\n'
         'def sample_from_diffusion(model, x0, n_steps):\n'
         '    return solve_ode(lambda x, t: diffusion_velocity(model, x, t), x0, n_steps, "rk4").x\n', 's > 1'),
    (22, 'def sample_from_diffusion(model, x0, n_steps):\n'
         '    return solve_ode(lambda x, t: diffusion_velocity(model, x, t), x0, n_steps).x\n', 'Euler steps'),
    (22, 'def sample_from_diffusion(model, x0, n_steps):\n'
         '    return solve_ode(lambda x, t: diffusion_velocity(model, x, t), x0, n_steps, "rk4",'
         ' return_trajectory=True).trajectory\n', 'whole trajectory'),
    (23, 'def rk4_step(velocity, x, t, h):\n    k1 = velocity(x, t)\n    k2 = velocity(x + h / 2 * k1, t + h / 2)\n'
         '    k3 = velocity(x + h * (2 * k2 - k1), t + h)\n    return x + h * (k1 + 4 * k2 + k3) / 6\n',
     "Kutta's three-stage step"),
    (23, 'def exact_divergence(velocity, x, t):\n    x = x.detach().requires_grad_(True)\n'
         '    with torch.enable_grad():\n'
         '        return torch.autograd.grad(velocity(x, t).sum(), x)[0].sum(dim=1)\n', 'every entry of the Jacobian'),
    (23, _RK4_LIKELIHOOD.replace('RESULT', '-state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)'),
     'wrong sign'),
    (23, _RK4_LIKELIHOOD.replace('RESULT', 'state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1)'),
     'normalising constant'),
    (23, _RK4_LIKELIHOOD.replace('RESULT', 'state[:, 2] - 0.5 * (x1 ** 2).sum(dim=1) - np.log(2 * np.pi)'),
     'read at x1'),
    (23, _RK4_LIKELIHOOD.replace('RESULT', '- 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)'),
     'divergence term is missing'),
    (23, _RK4_LIKELIHOOD.replace('1 - k / n_steps, -1 / n_steps', 'k / n_steps, 1 / n_steps').replace(
        'RESULT', 'state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)'), 'runs forward'),
    (23, _RK4_LIKELIHOOD.replace('1 - k / n_steps, -1 / n_steps', 'k / n_steps, -1 / n_steps').replace(
        'RESULT', 'state[:, 2] - 0.5 * (state[:, :2] ** 2).sum(dim=1) - np.log(2 * np.pi)'), 'wrong times'),
    (23, 'MEAN_LOG_LIKELIHOOD = {n: -value for n, value in MEAN_LOG_LIKELIHOOD.items()}\n', 'negative log-likelihood'),
    (23, 'MEAN_LOG_LIKELIHOOD = {n: 500 * value for n, value in MEAN_LOG_LIKELIHOOD.items()}\n', 'sum over the points'),
    (23, 'LIKELIHOOD_TREND = "a"\n', '2-step and 16-step'),
]
