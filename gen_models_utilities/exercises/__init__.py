"""The checks of notebooks/exercises/17_flow_matching_exercises.ipynb, one module per part of the notebook.

The notebook imports this package as ``checks`` and calls ``checks.check_<name>(...)`` under each answer.
How a check reports (``Correct:`` or an ``ExerciseFailure`` naming the typical mistake) is in ``_harness``.
"""
from ._harness import AnswerNotWritten, ExerciseFailure, NotAnAnswer, grade_choice
from .part1_paths import check_encode, check_field_ends, check_marginal_velocity, check_path
from .part2_loss import check_loss, check_loss_floor, check_trained_model, data_variance_floor
from .part3_sampling import check_euler, check_one_step, check_rk4, check_step_study, fewest_good_steps
from .part4_conditioning import check_conditional_sampling, check_extrapolation, check_guidance
from .part5_straighter_paths import check_ot_pairing

__all__ = [name for name in dir() if name.startswith("check_")] + [
    "AnswerNotWritten", "ExerciseFailure", "NotAnAnswer", "data_variance_floor", "fewest_good_steps", "grade_choice"]
