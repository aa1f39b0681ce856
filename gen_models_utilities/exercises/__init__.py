"""The checks of notebooks/exercises/17_flow_matching_exercises.ipynb, one module per part of the notebook.

The notebook imports this package as ``checks`` and calls ``checks.check_<name>(...)`` under each answer;
each part's module lists its public checks in ``__all__``. How a check reports (``Correct:`` or an
``ExerciseFailure`` naming the typical mistake) is in ``_harness``.
"""
from ._harness import AnswerNotWritten, ExerciseFailure, NotAnAnswer, grade_choice
from .part1_paths import *
from .part2_loss import *
from .part3_sampling import *
from .part4_conditioning import *
from .part5_straighter_paths import *
from .part6_other_models import *
