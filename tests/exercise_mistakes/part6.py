"""Typical wrong answers to part 6 of the exercise notebook: each must fail its check with a hint."""

# (exercise, what the student got wrong, code that replaces the answer)
WRONG_ANSWERS = [
]

# (exercise, code, a phrase of the hint or mistake name its failure must show)
NAMED_MISTAKES = [
]
