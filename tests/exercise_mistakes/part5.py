"""Typical wrong answers to part 5 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (19, 'one passing draw taken as enough', """
        def fewest_euler_steps(velocity, step_counts, seeds, n_samples):
            for n_steps in step_counts:
                if any(ring_quality(euler_sample(velocity, n_samples, n_steps, seed)[-1]).as_good_as_data
                       for seed in seeds):
                    return n_steps
            return None
     """),
    (19, 'only the first seed', """
        def fewest_euler_steps(velocity, step_counts, seeds, n_samples):
            for n_steps in step_counts:
                if ring_quality(euler_sample(velocity, n_samples, n_steps, seeds[0])[-1]).as_good_as_data:
                    return n_steps
            return None
     """),
    (19, 'only the last seed (the loop overwrites the verdict)', """
        def fewest_euler_steps(velocity, step_counts, seeds, n_samples):
            for n_steps in step_counts:
                for seed in seeds:
                    quality = ring_quality(euler_sample(velocity, n_samples, n_steps, seed)[-1])
                if quality.as_good_as_data:
                    return n_steps
            return None
     """),
    (19, 'W2 alone', """
        def fewest_euler_steps(velocity, step_counts, seeds, n_samples):
            for n_steps in step_counts:
                if all(ring_quality(euler_sample(velocity, n_samples, n_steps, seed)[-1]).w2_like_data
                       for seed in seeds):
                    return n_steps
            return None
     """),
    (19, 'the last passing count', """
        def fewest_euler_steps(velocity, step_counts, seeds, n_samples):
            found = None
            for n_steps in step_counts:
                if all(ring_quality(euler_sample(velocity, n_samples, n_steps, seed)[-1]).as_good_as_data
                       for seed in seeds):
                    found = n_steps
            return found
     """),
    (19, 'the position in step_counts', """
        def fewest_euler_steps(velocity, step_counts, seeds, n_samples):
            for i, n_steps in enumerate(step_counts):
                if all(ring_quality(euler_sample(velocity, n_samples, n_steps, seed)[-1]).as_good_as_data
                       for seed in seeds):
                    return i
            return None
     """),
    (20, 'length over chord', """
        def straightness(trajectory):
            segments = (trajectory[1:] - trajectory[:-1]).norm(dim=2).sum(dim=0)
            return float((segments / (trajectory[-1] - trajectory[0]).norm(dim=1)).mean())
     """),
    (20, 'ratio of the means', """
        def straightness(trajectory):
            segments = (trajectory[1:] - trajectory[:-1]).norm(dim=2).sum(dim=0)
            return float((trajectory[-1] - trajectory[0]).norm(dim=1).mean() / segments.mean())
     """),
    (20, 'squared segment lengths', """
        def straightness(trajectory):
            segments = (trajectory[1:] - trajectory[:-1]).pow(2).sum(dim=2).sum(dim=0)
            return float(((trajectory[-1] - trajectory[0]).norm(dim=1) / segments).mean())
     """),
    (20, 'a single Euler step', """
        def flow_endpoints(velocity, x0, n_steps):
            return x0 + velocity(x0, 0.0)
     """),
    (20, 'Euler steps for the pairs', """
        def flow_endpoints(velocity, x0, n_steps):
            return euler_path(velocity, x0, torch.linspace(0, 1, n_steps + 1))[-1]
     """),
    (20, 'midpoint steps for the pairs', """
        def flow_endpoints(velocity, x0, n_steps):
            return solve_ode(velocity, x0, n_steps=n_steps, method="midpoint").x
     """),
    (20, 'time run backwards', """
        def flow_endpoints(velocity, x0, n_steps):
            x = x0
            for k in range(n_steps):
                x = kutta_step(velocity, x, 1 - k / n_steps, -1 / n_steps)
            return x
     """),
    (20, 'whole trajectory returned', """
        def flow_endpoints(velocity, x0, n_steps):
            return solve_ode(velocity, x0, n_steps=n_steps, method="rk4", return_trajectory=True).trajectory
     """),
    (20, 'predicts perfectly straight paths', """
        REFLOW_PREDICTION = "a"
     """),
    (20, 'predicts no change', """
        REFLOW_PREDICTION = "b"
     """),
    (21, 'average velocity with the sign of r - t flipped', """
        def average_velocity(field, z, t, r):
            z_r = solve_ode(field, z, n_steps=200, method="rk4", t0=t, t1=r).x
            return (z_r - z) / (t - r)
     """),
    (21, 'end point returned, not the velocity', """
        def average_velocity(field, z, t, r):
            return solve_ode(field, z, n_steps=200, method="rk4", t0=t, t1=r).x
     """),
    (21, 'z held still in the difference', """
        def identity_residual(field, z, t, r, h=1e-3):
            du_dt = (average_velocity(field, z, t + h, r) - average_velocity(field, z, t - h, r)) / (2 * h)
            return average_velocity(field, z, t, r) - (field(z, t) - (t - r) * du_dt)
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
    (21, 'def identity_residual(field, z, t, r, h=1e-3):\n'
         '    du_dt = (average_velocity(field, z, t + h, r) - average_velocity(field, z, t - h, r)) / (2 * h)\n'
         '    return average_velocity(field, z, t, r) - (field(z, t) - (t - r) * du_dt)\n', 'z held still'),
    (19, 'def fewest_euler_steps(velocity, step_counts, seeds, n_samples):\n'
         '    for n_steps in step_counts:\n'
         '        if ring_quality(euler_sample(velocity, n_samples, n_steps, seeds[0])[-1]).as_good_as_data:\n'
         '            return n_steps\n'
         '    return None\n',
     'one draw taken as enough'),
    (19, 'def fewest_euler_steps(velocity, step_counts, seeds, n_samples):\n'
         '    for n_steps in step_counts:\n'
         '        if all(ring_quality(euler_sample(velocity, n_samples, n_steps, s)[-1]).w2_like_data '
         'for s in seeds):\n'
         '            return n_steps\n'
         '    return None\n',
     'W2 alone'),
    (19, 'def fewest_euler_steps(velocity, step_counts, seeds, n_samples):\n'
         '    found = None\n'
         '    for n_steps in step_counts:\n'
         '        if all(ring_quality(euler_sample(velocity, n_samples, n_steps, s)[-1]).as_good_as_data '
         'for s in seeds):\n'
         '            found = n_steps\n'
         '    return found\n',
     'not the fewest'),
    (19, 'def fewest_euler_steps(velocity, step_counts, seeds, n_samples):\n'
         '    for i, n_steps in enumerate(step_counts):\n'
         '        if all(ring_quality(euler_sample(velocity, n_samples, n_steps, s)[-1]).as_good_as_data '
         'for s in seeds):\n'
         '            return i\n'
         '    return None\n',
     'an index, not a step count'),
    (20, 'def straightness(trajectory):\n'
         '    segments = (trajectory[1:] - trajectory[:-1]).norm(dim=2).sum(dim=0)\n'
         '    return float((trajectory[-1] - trajectory[0]).norm(dim=1).mean() / segments.mean())\n',
     'the ratio of the means'),
    (20, 'def straightness(trajectory):\n'
         '    segments = (trajectory[1:] - trajectory[:-1]).norm(dim=2).sum(dim=0)\n'
         '    return float((segments / (trajectory[-1] - trajectory[0]).norm(dim=1)).mean())\n',
     'inverted'),
    (20, 'def flow_endpoints(velocity, x0, n_steps):\n'
         '    return euler_path(velocity, x0, torch.linspace(0, 1, n_steps + 1))[-1]\n',
     'Euler steps, too coarse'),
    (20, 'def flow_endpoints(velocity, x0, n_steps):\n'
         '    return solve_ode(velocity, x0, n_steps=n_steps, method="midpoint").x\n',
     'a second-order method'),
    (20, 'def flow_endpoints(velocity, x0, n_steps):\n    return x0 + velocity(x0, 0.0)\n',
     'a single Euler step'),
    (20, 'def flow_endpoints(velocity, x0, n_steps):\n'
         '    return solve_ode(velocity, x0, n_steps=n_steps, method="rk4", return_trajectory=True).trajectory\n',
     'the whole trajectory returned'),
]
