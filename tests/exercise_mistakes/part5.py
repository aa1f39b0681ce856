"""Typical wrong answers to part 5 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
    (19, 'identity pairing', """
        def ot_pairing(x0, x1):
            return x0
     """),
    (19, 'pairs x1 with itself', """
        def ot_pairing(x0, x1):
            return x1
     """),
    (19, 'nearest neighbour, not a permutation', """
        def ot_pairing(x0, x1):
            return x0[torch.cdist(x1, x0).argmin(dim=1)]
     """),
    (19, 'assignment read the wrong way round', """
        def ot_pairing(x0, x1):
            from scipy.optimize import linear_sum_assignment
            _, columns = linear_sum_assignment((torch.cdist(x0, x1) ** 2).numpy())
            return x0[torch.as_tensor(columns)]
     """),
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
]
