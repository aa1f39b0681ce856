"""Typical wrong answers to part 3 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (9, 'field evaluated at the end of each step', """
        def euler_path(velocity, x0, times):
            points = [x0]
            for k in range(len(times) - 1):
                h = float(times[k + 1] - times[k])
                points.append(points[-1] + h * velocity(points[-1], float(times[k + 1])))
            return torch.stack(points)
     """),
    (9, 'equal steps on any grid', """
        def euler_path(velocity, x0, times):
            K = len(times) - 1
            h = float(times[-1] - times[0]) / K
            points = [x0]
            for k in range(K):
                points.append(points[-1] + h * velocity(points[-1], float(times[k])))
            return torch.stack(points)
     """),
    (9, "the chapter's uniform times from 0, whatever the grid", """
        def euler_path(velocity, x0, times):
            K = len(times) - 1
            points = [x0]
            for k in range(K):
                points.append(points[-1] + velocity(points[-1], k / K) / K)
            return torch.stack(points)
     """),
    (9, 'only the end point returned', """
        def euler_path(velocity, x0, times):
            x = x0
            for t, t_next in zip(times[:-1].tolist(), times[1:].tolist()):
                x = x + (t_next - t) * velocity(x, t)
            return x
     """),
    (9, 'the start dropped', """
        def euler_path(velocity, x0, times):
            x, points = x0, []
            for t, t_next in zip(times[:-1].tolist(), times[1:].tolist()):
                x = x + (t_next - t) * velocity(x, t)
                points.append(x)
            return torch.stack(points)
     """),
    (9, 'an in-place update', """
        def euler_path(velocity, x0, times):
            x, points = x0, [x0]
            for t, t_next in zip(times[:-1].tolist(), times[1:].tolist()):
                x += (t_next - t) * velocity(x, t)
                points.append(x)
            return torch.stack(points)
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
    (10, 'a percentage', """
        ONE_STEP_OFF_MODE = 100
     """),
    (11, 'row 3 without its -1', """
        def kutta_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t + h / 2)
            k3 = velocity(x + 2 * h * k2, t + h)
            return x + h * (k1 + 4 * k2 + k3) / 6
     """),
    (11, 'equal weights', """
        def kutta_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t + h / 2)
            k3 = velocity(x + h * (2 * k2 - k1), t + h)
            return x + h * (k1 + k2 + k3) / 3
     """),
    (11, 'stage times ignored', """
        def kutta_step(velocity, x, t, h):
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t)
            k3 = velocity(x + h * (2 * k2 - k1), t + h)
            return x + h * (k1 + 4 * k2 + k3) / 6
     """),
    (11, 'natural log of the error ratio', """
        def observed_order(step, velocity, x0, exact, n_steps):
            errors = []
            for n in (n_steps, 2 * n_steps):
                x = x0
                for k in range(n):
                    x = step(velocity, x, k / n, 1 / n)
                errors.append((x - exact).norm(dim=1).mean())
            return float(torch.log(errors[0] / errors[1]))
     """),
    (11, 'error ratio upside down', """
        def observed_order(step, velocity, x0, exact, n_steps):
            errors = []
            for n in (n_steps, 2 * n_steps):
                x = x0
                for k in range(n):
                    x = step(velocity, x, k / n, 1 / n)
                errors.append((x - exact).norm(dim=1).mean())
            return float(torch.log2(errors[1] / errors[0]))
     """),
    (11, "RK4's order measured instead", """
        from gen_models_utilities.solvers import rk4_step
        MEASURED_ORDER = observed_order(rk4_step, spiral_field, spiral_x0, spiral_exact, 4)
     """),
    (12, 'one number without its noise', """
        def off_mode_over_seeds(model, n_steps, seeds, n_samples):
            return over_seeds(lambda seed: off_mode_fraction(euler_sample(model, n_samples, n_steps, seed)[-1]),
                              seeds).mean
     """),
    (12, 'the same draw for every seed', """
        def off_mode_over_seeds(model, n_steps, seeds, n_samples):
            return over_seeds(lambda seed: off_mode_fraction(euler_sample(model, n_samples, n_steps, 0)[-1]), seeds)
     """),
    (12, 'percentages', """
        def off_mode_over_seeds(model, n_steps, seeds, n_samples):
            return over_seeds(lambda seed: 100 * off_mode_fraction(euler_sample(model, n_samples, n_steps, seed)[-1]),
                              seeds)
     """),
    (12, 'too few steps', """
        FEWEST_STEPS = 16
     """),
    (12, 'one draw', """
        SEEDS = (0,)
     """),
    (13, 'solver options not passed on', """
        def end_point_report(model, x0, reference, **solver_options):
            solution = solve_ode(model, x0)
            return solution.nfe, off_mode_fraction(solution.x), float((solution.x - reference).norm(dim=1).mean())
     """),
    (13, 'root mean square instead of the mean distance', """
        def end_point_report(model, x0, reference, **solver_options):
            solution = solve_ode(model, x0, **solver_options)
            error = float((solution.x - reference).pow(2).sum(dim=1).mean().sqrt())
            return solution.nfe, off_mode_fraction(solution.x), error
     """),
    (13, 'share as a percentage', """
        def end_point_report(model, x0, reference, **solver_options):
            solution = solve_ode(model, x0, **solver_options)
            error = float((solution.x - reference).norm(dim=1).mean())
            return solution.nfe, 100 * off_mode_fraction(solution.x), error
     """),
    (13, 'the piecewise-smooth network blamed', """
        DOPRI_ANSWER = "a"
     """),
    (13, 'the steps past t = 1 blamed', """
        DOPRI_ANSWER = "d"
     """),
    (14, 'the variance scaled', """
        @torch.no_grad()
        def scaled_start_samples(model, scale, n_samples, seed):
            x0 = scale ** 2 * sample_base("gaussian", n_samples, seed=seed)
            return euler_path(model, x0, torch.linspace(0, 1, 33))[-1]
     """),
    (14, 'the samples scaled instead of the start', """
        @torch.no_grad()
        def scaled_start_samples(model, scale, n_samples, seed):
            x0 = sample_base("gaussian", n_samples, seed=seed)
            return scale * euler_path(model, x0, torch.linspace(0, 1, 33))[-1]
     """),
    (14, 'shares of all samples', """
        def mode_imbalance(samples):
            counts = torch.as_tensor(samples_per_mode(samples), dtype=torch.float64)
            return float((counts / len(samples) - 1 / 8).abs().sum() / 2)
     """),
    (14, 'the factor 1/2 left out', """
        def mode_imbalance(samples):
            counts = torch.as_tensor(samples_per_mode(samples), dtype=torch.float64)
            return float((counts / counts.sum() - 1 / 8).abs().sum())
     """),
    (14, 'lower temperature predicted to sharpen', """
        TEMPERATURE_ANSWER = "b"
     """),
    (15, 'atan instead of atan2', """
        def start_sector(x0):
            return torch.round(torch.atan(x0[:, 1] / x0[:, 0]) / (torch.pi / 4)).long() % 8
     """),
    (15, 'floor instead of round', """
        def start_sector(x0):
            return torch.floor(torch.atan2(x0[:, 1], x0[:, 0]) / (torch.pi / 4)).long() % 8
     """),
    (15, 'negative angles not wrapped', """
        def start_sector(x0):
            return torch.round(torch.atan2(x0[:, 1], x0[:, 0]) / (torch.pi / 4)).long()
     """),
    (15, 'the base predicted not to matter', """
        LOGO_ANSWER = "a"
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (9, 'def euler_path(velocity, x0, times):\n'
        '    points = [x0]\n'
        '    for k in range(len(times) - 1):\n'
        '        h = float(times[k + 1] - times[k])\n'
        '        points.append(points[-1] + h * velocity(points[-1], float(times[k + 1])))\n'
        '    return torch.stack(points)\n', 'the field read at the end of each step'),
    (9, 'def euler_path(velocity, x0, times):\n'
        '    K = len(times) - 1\n'
        '    points = [x0]\n'
        '    for k in range(K):\n'
        '        points.append(points[-1] + (times[-1] - times[0]) / K * velocity(points[-1], float(times[k])))\n'
        '    return torch.stack(points)\n', 'equal steps on a grid whose steps differ'),
    (10, 'ONE_STEP_OFF_MODE = 100\n', 'a percentage where a fraction is asked for'),
    (11, 'def observed_order(step, velocity, x0, exact, n_steps):\n'
         '    errors = []\n'
         '    for n in (n_steps, 2 * n_steps):\n'
         '        x = x0\n'
         '        for k in range(n):\n'
         '            x = step(velocity, x, k / n, 1 / n)\n'
         '        errors.append((x - exact).norm(dim=1).mean())\n'
         '    return float(torch.log(errors[0] / errors[1]))\n', 'the natural log of the error ratio'),
    (12, 'def off_mode_over_seeds(model, n_steps, seeds, n_samples):\n'
         '    return off_mode_fraction(euler_sample(model, n_samples, n_steps, seeds[0])[-1])\n',
     'one number without its noise'),
    (12, 'SEEDS = (0,)\n', 'one draw'),
    (13, 'def end_point_report(model, x0, reference, **solver_options):\n'
         '    solution = solve_ode(model, x0)\n'
         '    return solution.nfe, off_mode_fraction(solution.x), float((solution.x - reference).norm(dim=1).mean())\n',
     'the solver options not passed on'),
    (14, '@torch.no_grad()\n'
         'def scaled_start_samples(model, scale, n_samples, seed):\n'
         '    x0 = scale ** 2 * sample_base("gaussian", n_samples, seed=seed)\n'
         '    return euler_path(model, x0, torch.linspace(0, 1, 33))[-1]\n',
     'the variance scaled, not the standard deviation'),
    (15, 'def start_sector(x0):\n'
         '    return torch.round(torch.atan(x0[:, 1] / x0[:, 0]) / (torch.pi / 4)).long() % 8\n', 'atan, not atan2'),
]
