"""Typical wrong answers to the exercises, one module per part of the notebook (WRONG_ANSWERS, NAMED_MISTAKES)."""
