"""What every exercise check shares: how a wrong answer is reported, and the fixed inputs it is tried on.

A public check is a function decorated with :func:`exercise_check`. It runs the student's answer on
fixed inputs (fixed seeds, CPU tensors), compares it with the package's own implementation and then
prints one line starting with ``Correct:`` (or ``Recorded:`` for an answer graded later by hidden
tests), or raises :class:`ExerciseFailure`, an ``AssertionError`` whose message reads

    <what>: expected <x>, received <y>. Typical mistake: <name>. Hint: <text>

(the ``Typical mistake`` part only when the answer matches a known mistake). The decorator re-raises
every failure from the caller's line, so the traceback a student sees holds their own cell and their
own code, never the checker's source or its table of mistakes.
"""
from __future__ import annotations

import functools
import math
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._checks import _short
from ..data import create_ring_gaussians

ATOL = 1e-4           # absolute tolerance of every comparison of points or velocities
RTOL = 1e-4           # relative tolerance of comparisons of scalars (losses, costs)


_HERE = Path(__file__).resolve().parent        # frames in this folder are the checker's, not the student's


class _StudentTraceback:
    """An exception that IPython shows without the checker's frames (IPython's ``_render_traceback_`` hook):
    the student's cell and the student's own functions stay, the check's source and its table of mistakes go."""

    def _render_traceback_(self) -> list[str]:
        frames, tb = [], self.__traceback__
        while tb is not None:
            if not Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_HERE):
                frames.append(tb)
            tb = tb.tb_next
        student_tb = None
        for tb in reversed(frames):
            student_tb = types.TracebackType(student_tb, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
        try:
            from IPython import get_ipython
            return get_ipython().InteractiveTB.structured_traceback(type(self), self, student_tb)
        except Exception:                       # not in IPython: the plain last line
            return [f"{type(self).__name__}: {self}"]


class ExerciseFailure(_StudentTraceback, AssertionError):
    """A wrong answer to an exercise; the message says what was expected and what was received."""


class AnswerNotWritten(_StudentTraceback, NotImplementedError):
    """The student's answer still raises the stub's NotImplementedError."""


class NotAnAnswer(_StudentTraceback, TypeError):
    """An argument that is not what the exercise asks for (a number where a function is asked for, ...)."""


def fail(what: str, expected: str, received: str, hint: str = "", mistake: str = "") -> None:
    """Raise the failure every check uses: what went wrong, expected, received, the mistake it looks like, a hint."""
    message = f"{what}: expected {expected}, received {received}."
    if mistake:
        message += f" Typical mistake: {mistake.rstrip('.')}."
    if hint:
        message += f" Hint: {hint}"
    raise ExerciseFailure(message)


def exercise_check(check):
    """Decorate a public check so that its failures show no checker source.

    ``ExerciseFailure``, ``TypeError`` (an argument that is not what the exercise asks for) and a stub's
    ``NotImplementedError`` are raised again without their context, as exceptions that IPython shows
    with the student's frames only (see ``_StudentTraceback``); pytest hides this frame too.
    """
    @functools.wraps(check)
    def run(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 (read by pytest)
        try:
            return check(*args, **kwargs)
        except ExerciseFailure as failure:
            error = ExerciseFailure(str(failure))
            error.__traceback__ = failure.__traceback__
        except NotImplementedError as stub:
            error = AnswerNotWritten(f"{stub} (your answer is not written yet, so the check cannot run)")
            error.__traceback__ = stub.__traceback__
        except TypeError as wrong_argument:
            error = NotAnAnswer(str(wrong_argument))
        raise error from None
    run.is_exercise_check = True
    return run


def require_callable(name: str, value) -> None:
    """Refuse an argument that is not the function the student wrote."""
    if not callable(value):
        raise TypeError(f"{name} must be the function you wrote (a callable), got {_short(value)}")


def call(name: str, function, *args, **kwargs):
    """``function(*args, **kwargs)``, the student's code; an error in it fails the check with a message that
    names ``name`` (a stub's NotImplementedError is left to raise)."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:                 # reported below, outside the except: no traceback into the check
        kind, text = type(error).__name__, str(error).strip().splitlines()[0] if str(error).strip() else ""
    fail(f"{name} raised {kind}", "a result", f"the error {kind}: {text}" if text else f"the error {kind}",
         "call it by itself in a cell on a small input and read the traceback.")


def as_tensor(name: str, value, shape: tuple) -> torch.Tensor:
    """The student's result as a detached float CPU tensor of ``shape`` with finite values, or a clear failure.

    A NumPy array is accepted as well (numpy or torch are both right answers)."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        fail(f"{name} returned the wrong type", f"a torch.Tensor of shape {shape}", _short(value),
             "build the result from the input tensors with torch operations.")
    if tuple(value.shape) != tuple(shape):
        fail(f"{name} returned the wrong shape", f"shape {tuple(shape)}", f"shape {tuple(value.shape)}",
             "keep one row per point; broadcasting t of shape (B, 1) against (B, 2) does this.")
    value = value.detach().float().cpu()
    check_finite(name, value)
    return value


def as_number(name: str, value, expected: str = "a number") -> float:
    """The student's number as a float, or a failure naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        fail(f"{name} is not a number", expected, _short(value), f"set {name} to a number, e.g. {name} = 0.5.")
    if not math.isfinite(number):
        fail(f"{name} is not finite", expected, _short(value), f"set {name} to a finite number.")
    return number


def as_fraction(name: str, value) -> float:
    """The student's share as a float in [0, 1]; a percentage (1 < value <= 100) is named as the mistake."""
    share = as_number(name, value, "a fraction between 0 and 1")
    if not 0 <= share <= 1:
        mistake = "a percentage where a fraction is asked for" if 1 < share <= 100 else ""
        fail(f"{name} is not a fraction", "a number between 0 and 1", _short(value),
             "give the share as a fraction: 30% is 0.3.", mistake)
    return share


def check_finite(name: str, value: torch.Tensor) -> None:
    """Fail when the student's result holds NaN or inf."""
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        fail(f"{name} returned NaN or inf", "finite numbers", f"{bad} of {value.numel()} values NaN or inf",
             "look for a division by zero, the log of 0 or the square root of a negative number.")


def vector(v: torch.Tensor) -> str:
    """A short row of numbers for a message: (0.123, -1.000)."""
    return "(" + ", ".join(f"{float(a):.3f}" for a in v.reshape(-1)) + ")"


def close(a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> bool:
    """Same shape and equal within ``atol``."""
    return a.shape == b.shape and bool(torch.allclose(a, b.to(a.dtype), atol=atol, rtol=0.0))


def compare(name: str, received: torch.Tensor, expected: torch.Tensor, where, mistakes: dict, hint: str,
            atol: float = ATOL) -> None:
    """Fail unless received equals expected (B, D): name the first wrong row (``where(i)`` describes its
    input) and the first typical mistake that ``received`` equals.

    ``mistakes`` maps a mistake's name to ``(its result, its hint)``, or to its result alone (the name is
    then the hint).
    """
    if close(received, expected, atol):
        return
    i = int(torch.nonzero(((received - expected).abs() > atol).any(dim=1))[0, 0])
    for mistake, result in mistakes.items():
        result, mistake_hint = result if isinstance(result, tuple) else (result, "")
        if close(received, result, atol):
            fail(f"{name} is wrong {where(i)}", vector(expected[i]), vector(received[i]), mistake_hint or hint,
                 mistake)
    fail(f"{name} is wrong {where(i)}", vector(expected[i]), vector(received[i]), hint)


def choice(name: str, answer, options: str = "abcd") -> str:
    """A multiple-choice answer as one lower-case letter of ``options`` ('(C)', ' c' count), or a failure."""
    letter = answer.strip().lower().strip("()").strip() if isinstance(answer, str) else answer
    if letter not in set(options):
        fail(f"{name} is not one of the choices", f"one of {sorted(options)}", _short(answer),
             f"set {name} to a single letter in quotes, e.g. {name} = 'a'.")
    return letter


def grade_choice(name: str, answer, right: str, reasons: dict) -> str:
    """Fail unless ``answer`` is the letter ``right``; ``reasons`` maps each wrong letter to why it is wrong.

    Called from a hidden test, so that the right letter is not in the package a student can read."""
    letter = choice(name, answer, "".join(sorted(set(reasons) | {right})))
    if letter != right:
        fail(f"{name} is not the right choice", "another letter", repr(letter), reasons[letter])
    return letter


def fixed_pairs(n: int = 256, seed: int = 0):
    """Base points x0, ring points x1 (n, 2) and times t (n, 1), the same on every machine."""
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=generator)
    x1 = torch.from_numpy(create_ring_gaussians(n, generator=generator)[0])
    t = torch.rand(n, 1, generator=generator)
    return x0, x1, t


class SpiralField(nn.Module):
    """A known velocity field that depends on both x and t, for checking solvers exactly.

    v(x, t) = A x + (2t - 1) b with A a damped rotation; x: (B, 2), t a float or (B, 1).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("matrix", torch.tensor([[-0.5, -1.0], [1.0, -0.5]]))
        self.register_buffer("offset", torch.tensor([1.0, 0.5]))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = t if isinstance(t, torch.Tensor) else torch.tensor(float(t))
        return x @ self.matrix.T.to(x.dtype) + (2 * t - 1) * self.offset.to(x.dtype)


class LinearProbe(nn.Module):
    """A small model with parameters whose output clearly depends on x and t, for checking losses.

    v(x, t) = x W^T + t b + c with fixed W (2, 2), b (2,), c (2,); x: (B, 2), t: (B, 1).
    """

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([[0.3, -1.2], [0.8, 0.5]]))
        self.time_weight = nn.Parameter(torch.tensor([2.0, -1.0]))
        self.bias = nn.Parameter(torch.tensor([0.5, 0.2]))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return x @ self.weight.T + t * self.time_weight + self.bias
