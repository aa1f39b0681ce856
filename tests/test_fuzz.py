"""Property-based tests of the public functions with bad and odd inputs (hypothesis).

Every call must end in a correct result or in a ValueError / TypeError whose message names the
argument; any other exception, or NaN in a result computed from NaN-free input, fails the test.
Where the rule for valid input is simple (points, counts, devices) an independent oracle says
which outcome is expected, so refusing good input fails as well as accepting bad input.

Run with ``-s`` to print the tally of inputs tried and outcomes per function.
Finite values are drawn with |x| <= 1e3 (plus a few huge ones that do not fit float32): float32
arithmetic overflowing on astronomically large but finite points is out of scope.
"""
from __future__ import annotations

import collections
import math
import numbers
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import gen_models_utilities as gmu
from gen_models_utilities import couplings
from gen_models_utilities._checks import MAX_SAMPLES

TALLY: collections.Counter = collections.Counter()      # (function, input kind, outcome) -> count
pytestmark = pytest.mark.filterwarnings("ignore:batch_size=.*is larger than")
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _one_thread_and_tally():
    """One torch thread (much faster for tiny nets on a loaded machine); print the tally at the end."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    print_tally()


def print_tally():
    rows = collections.defaultdict(collections.Counter)
    for (function, kind, outcome), count in TALLY.items():
        rows[(function, kind)][outcome] += count
    print("\n\nfuzz tally: function | inputs | result | ValueError | TypeError")
    total = collections.Counter()
    for (function, kind), outcomes in sorted(rows.items()):
        n = sum(outcomes.values())
        total[kind] += n
        print(f"{function:34s} {kind:5s} {n:5d} {outcomes['result']:6d} {outcomes['ValueError']:6d} "
              f"{outcomes['TypeError']:6d}")
    print(f"total: {total['bad']} bad inputs, {total['good']} good inputs, {total['any']} judged by the "
          f"function (its result checked, or its refusal required to name the argument)")


class Refused(Exception):
    """Raised by ``attempt`` only to tell a caller that the call was refused properly."""


def attempt(function: str, names, call, *args, bad: bool | None = None, **kwargs):
    """Run ``call``; return its result, or raise Refused for a ValueError/TypeError naming one of
    ``names``. ``bad``: True/False when an oracle knows whether the input must be refused."""
    names = (names,) if isinstance(names, str) else tuple(names)
    kind = "bad" if bad else "good" if bad is False else "any"
    try:
        result = call(*args, **kwargs)
    except (ValueError, TypeError) as error:
        TALLY[(function, kind, type(error).__name__)] += 1
        message = str(error)
        assert any(name in message for name in names), \
            f"{function}: {type(error).__name__} does not name {names}: {message}"
        assert bad is not False, f"{function} refused good input: {type(error).__name__}: {message}"
        raise Refused(message) from None
    except Exception as error:            # anything else is a bug the student would see as a traceback
        raise AssertionError(f"{function} raised {type(error).__name__}: {error}") from error
    TALLY[(function, kind, "result")] += 1
    assert bad is not True, f"{function} accepted bad input and returned {type(result).__name__}"
    return result


def refused(function, names, call, *args, **kwargs) -> bool:
    try:
        attempt(function, names, call, *args, **kwargs)
    except Refused:
        return True
    return False


def finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all())
    return bool(np.all(np.isfinite(np.asarray(value, dtype=float))))


# ------------------------------------------------------------------------------------- strategies

DTYPES = ("float32", "float32", "float32", "float64", "int64", "uint8", "bool", "complex64", "object")
CONTAINERS = ("numpy", "torch", "torch", "list", "meta")
SPECIALS = (None,) * 8 + (math.nan, math.inf, -math.inf, 1e39)


@dataclass
class Drawn:
    """A drawn array-like and what it is made of, so an oracle can say whether it is valid."""

    value: object
    shape: tuple
    dtype: str
    container: str
    special: float | None

    def is_points(self, dim: int = 2, tensor_only: bool = False) -> bool:
        return (self.dtype not in ("bool", "complex64", "object") and self.container != "meta"
                and (self.container == "torch" or not tensor_only) and self.special is None
                and len(self.shape) == 2 and self.shape[1] == dim and self.shape[0] >= 1)

    def __repr__(self):
        return f"Drawn({self.container} {self.dtype} {self.shape} special={self.special})"


@st.composite
def arrays(draw, shapes=None, containers=CONTAINERS, dtypes=DTYPES, specials=SPECIALS, magnitude=1e3):
    """Array-likes of random shape, dtype, container and content (NaN, inf, too large for float32)."""
    shape = tuple(draw(shapes if shapes is not None else
                       st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from(dtypes))
    container = draw(st.sampled_from(containers))
    if dtype == "object" and container in ("torch", "meta"):
        container = "numpy"
    size = int(np.prod(shape)) if shape else 1
    special = draw(st.sampled_from(specials)) if dtype in ("float32", "float64", "complex64") and size else None
    if special == 1e39 and dtype != "float64":
        special = None
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    base = rng.uniform(-magnitude, magnitude, size=shape)
    if dtype == "object":
        array = np.empty(size, dtype=object)
        for i in range(size):
            array[i] = draw(st.sampled_from(["a", None, 1.5, (1, 2)]))
        array = array.reshape(shape)
    elif dtype == "bool":
        array = base > 0
    elif dtype == "complex64":
        array = (base + 1j * base).astype(np.complex64)
    else:
        array = base.astype(dtype)
    if special is not None:
        array.flat[rng.integers(size)] = special
    if container == "numpy":
        value = array
    elif container == "list":
        value = array.tolist()
    elif container == "torch":
        value = torch.from_numpy(np.array(array, order="C"))            # keeps a 0-d shape
    else:
        value = torch.empty(shape, dtype=torch.from_numpy(np.zeros(1, dtype=dtype)).dtype, device="meta")
    return Drawn(value, shape, dtype, container, special)


def points_arrays(containers=CONTAINERS, **kwargs):
    """Valid (N, 2) points two times in three, anything else otherwise."""
    good = arrays(shapes=st.tuples(st.integers(1, 6), st.just(2)), dtypes=("float32", "float64", "int64"),
                  containers=tuple(c for c in containers if c != "meta") or ("torch",), specials=(None,),
                  **kwargs)
    return mostly(good, arrays(shapes=st.one_of(st.tuples(st.just(0), st.just(2)),
                                                st.lists(st.integers(0, 4), min_size=0, max_size=3)),
                               containers=containers, **kwargs), arrays(containers=containers, **kwargs))


def mostly(valid, *junk):
    """Valid values two times in three, so that
    calls with several arguments still reach the valid region often; the junk comes from all of ``junk``."""
    return st.sampled_from([True, True, False]).flatmap(lambda ok: valid if ok else st.one_of(*junk))


# Counts: small valid ones, junk, and huge ones that must be refused before any allocation.
counts = mostly(st.integers(1, 40), st.integers(-3, 0), st.integers(MAX_SAMPLES + 1, 2**80),
                st.floats(allow_nan=True), st.booleans(), st.none(), st.text(max_size=2), st.just(np.int64(7)),
                st.just(3.0))
reals = mostly(st.floats(-1e3, 1e3), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
               st.none(), st.booleans(), st.text(max_size=2), st.just(1 + 2j), st.just(np.float32(0.5)))
devices = st.one_of(st.sampled_from(["cpu", "meta", "cuda", "cuda:3", "mps", "xla", "nonsense", "", "CPU"]),
                    st.just(torch.device("cpu")), st.just(torch.device("meta")), st.integers(-2, 2),
                    st.none())


def is_count(value, low=1, high=MAX_SAMPLES) -> bool:
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high)


def is_real(value, low=-math.inf, high=math.inf, low_open=False) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return False
    return (value > low if low_open else value >= low) and value <= high


def is_labels(drawn: Drawn, n_classes) -> bool:
    """Whole-number class indices in [0, n_classes) in a real, non-boolean array (any shape)."""
    if drawn.container == "meta" or drawn.dtype in ("bool", "complex64", "object") or not is_count(n_classes,
                                                                                                      high=4096):
        return False
    values = np.asarray(drawn.value, dtype=float)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values))
                and (values.size == 0 or (values.min() >= 0 and values.max() < n_classes)))


def condition_ok(kind: str, condition) -> bool:
    """Whether a condition given to generate/solve_ode fits the model kind (one row, broadcast)."""
    if kind == "fm" or condition is None:
        return kind == "fm" and condition is None
    if isinstance(condition, str):
        return False
    values = np.asarray(condition.numpy() if isinstance(condition, torch.Tensor) else condition)
    if values.dtype.kind not in "fiu" or not np.all(np.isfinite(values)) or values.ndim > 2:
        return False
    width = 3 if kind == "onehot" else 1
    return values.size == width and (values.ndim == 0 or values.shape[-1] == width)


def is_device(value) -> bool:
    return value is None or (isinstance(value, (str, torch.device)) and str(value) in ("cpu",))


def small_model(cls=gmu.VelocityField, **config):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return cls(**config)


MODELS = {"fm": small_model(hidden_dim=8, time_emb_dim=4),
          "onehot": small_model(gmu.ConditionalVelocityField, n_classes=3, hidden_dim=8, time_emb_dim=4),
          "radius": small_model(gmu.ConditionalVelocityFieldRadius, hidden_dim=8, time_emb_dim=4,
                                radius_emb_dim=4)}
GOOD = torch.from_numpy(gmu.create_ring_gaussians(12, seed=0)[0])


# ------------------------------------------------------------------------------- data and bases

@FUZZ
@given(n_samples=counts, n_modes=st.one_of(counts, st.integers(4097, 10**9)), radius=reals, std=reals,
       seed=st.one_of(st.none(), st.integers(-3, 2**66), st.text(max_size=1), st.floats()))
def test_create_ring_gaussians(n_samples, n_modes, radius, std, seed):
    bad = not (is_count(n_samples) and is_count(n_modes, high=4096) and is_real(radius, 0, 1e6, low_open=True)
               and is_real(std, 0, 1e6) and (seed is None or is_count(seed, 0, 2**64 - 1)))
    try:
        points, labels = attempt("create_ring_gaussians", ["n_samples", "n_modes", "radius", "std", "seed"],
                                 gmu.create_ring_gaussians, n_samples, n_modes, radius, std, seed=seed, bad=bad)
    except Refused:
        return
    assert points.shape == (n_samples, 2) and points.dtype == np.float32 and finite(points)
    assert labels.shape == (n_samples,) and labels.min() >= 0 and labels.max() < n_modes


@FUZZ
@given(n_samples=counts, seed=st.one_of(st.none(), st.integers(-3, 2**66), st.just(torch.Generator())),
       generator=st.one_of(st.none(), st.just(torch.Generator()), st.just(5), st.just("g")))
def test_load_eth_z_logo_data(n_samples, seed, generator):
    seed_ok = seed is None or isinstance(seed, torch.Generator) or is_count(seed, 0, 2**64 - 1)
    generator_ok = generator is None or (isinstance(generator, torch.Generator) and seed is None)
    bad = not (is_count(n_samples) and seed_ok and generator_ok)
    try:
        points = attempt("load_eth_z_logo_data", ["n_samples", "seed", "generator"], gmu.load_eth_z_logo_data,
                         n_samples, seed=seed, generator=generator, bad=bad)
    except Refused:
        return
    assert points.shape == (n_samples, 2) and finite(points) and np.abs(points[:, 0]).max() <= 5.0


@FUZZ
@given(name=st.one_of(st.sampled_from(["gaussian", "uniform", "ethz_logo", "logo", "normal", "Gaussian", ""]),
                      st.none(), st.integers()), n_samples=counts, device=devices)
def test_sample_base(name, n_samples, device):
    bad = not (name in ("gaussian", "uniform", "ethz_logo", "logo", "normal") and is_count(n_samples)
               and is_device(device))
    try:
        x = attempt("sample_base", ["base", "n_samples", "device"], gmu.sample_base, name, n_samples,
                    seed=1, device=device, bad=bad)
    except Refused:
        return
    assert x.shape == (n_samples, 2) and x.device.type == "cpu" and finite(x)


# ---------------------------------------------------------------------------------------- loaders

@FUZZ
@given(data=points_arrays(), batch_size=counts)
def test_make_loader_and_radius_loader(data, batch_size):
    bad = not (data.is_points() and is_count(batch_size))
    for function, make in (("make_loader", gmu.make_loader), ("make_conditional_loader_radius",
                                                             gmu.make_conditional_loader_radius)):
        try:
            loader = attempt(function, ["data", "batch_size"], make, data.value, batch_size, seed=0, bad=bad)
        except Refused:
            continue
        batches = list(loader)
        assert sum(len(batch[0]) for batch in batches) == data.shape[0]
        assert all(finite(part) for batch in batches for part in batch)


@FUZZ
@given(labels=mostly(arrays(shapes=st.just((5,)), dtypes=("int64",), containers=("numpy", "torch", "list"),
                            specials=(None,), magnitude=2.9).map(
                                lambda d: Drawn(np.abs(np.asarray(d.value)), d.shape, d.dtype, "numpy", None)),
                     arrays(shapes=st.one_of(st.tuples(st.just(5)), st.lists(st.integers(0, 5), max_size=2)),
                            magnitude=4)),
       n_classes=mostly(st.integers(3, 40), counts, st.integers(4097, 10**12)))
def test_onehot_loader_and_class_code(labels, n_classes):
    points = GOOD[:5]
    good = is_labels(labels, n_classes)
    try:
        loader = attempt("make_conditional_loader_onehot", ["labels", "n_classes"],
                         gmu.make_conditional_loader_onehot, points, labels.value, 4, n_classes, seed=0,
                         bad=not (good and labels.shape == (5,)))
    except Refused:
        pass
    else:
        codes = torch.cat([c for _, c in loader])
        assert codes.shape == (5, n_classes) and torch.equal(codes.sum(dim=1), torch.ones(5))
    try:
        codes = attempt("class_code", ["labels", "n_classes"], gmu.class_code, labels.value, n_classes,
                        bad=not (good and len(labels.shape) == 1))
    except Refused:
        return
    assert codes.shape[1] == n_classes and torch.equal(codes.sum(dim=1), torch.ones(len(codes)))


@FUZZ
@given(points=points_arrays(), batch_size=counts,
       conditions=st.one_of(st.none(), arrays(shapes=st.one_of(st.tuples(st.integers(0, 6)),
                                                               st.tuples(st.integers(0, 6), st.integers(0, 3))))),
       device=devices)
def test_random_batches(points, batch_size, conditions, device):
    conditions_ok = conditions is None or (
        conditions.container != "meta" and conditions.dtype not in ("complex64", "object")
        and conditions.special is None and len(conditions.shape) in (1, 2)
        and points.is_points() and conditions.shape[0] == points.shape[0])
    bad = not (points.is_points() and is_count(batch_size) and is_device(device) and conditions_ok)
    try:
        batches = attempt("RandomBatches", ["data", "batch_size", "conditions", "device"], gmu.RandomBatches,
                          points.value, batch_size, None if conditions is None else conditions.value,
                          device=device, seed=0, bad=bad)
    except Refused:
        return
    assert points.is_points() and is_count(batch_size, high=10_000_000) and is_device(device)
    x, c = batches.sample()
    assert x.shape == (batch_size, 2) and finite(x) and (c is None or (len(c) == batch_size and finite(c)))


# ------------------------------------------------------------------------------------------ paths
# model.forward is teaching code without checks: bad input to a model is refused by the public
# functions that take one (solve_ode, generate, train), fuzzed below.

times = st.one_of(reals, arrays(shapes=st.one_of(st.tuples(st.integers(0, 4), st.just(1)),
                                                 st.lists(st.integers(0, 4), max_size=2)),
                                containers=("torch", "torch", "numpy"), magnitude=1))


def time_ok(t, n_rows: int) -> bool:
    """A finite real number, or a real tensor of shape (), (1, 1) or (n_rows, 1) (any values)."""
    if not isinstance(t, Drawn):
        return is_real(t)
    return (t.container == "torch" and t.dtype not in ("bool", "complex64")
            and t.shape in ((), (1, 1), (n_rows, 1)))


@settings(FUZZ, max_examples=60)
@given(x0=points_arrays(containers=("torch", "torch", "torch", "numpy")), data=st.data())
def test_interpolate_and_conditional_velocity(x0, data):
    rows = x0.shape[0] if x0.shape else 1
    x1 = data.draw(mostly(arrays(shapes=st.just(x0.shape), dtypes=("float32", "int64"), containers=("torch",)),
                          points_arrays(containers=("torch", "numpy"))), label="x1")
    t = data.draw(st.one_of(arrays(shapes=st.sampled_from([(), (1, 1), (rows, 1)]), dtypes=("float32",),
                                   containers=("torch",)), times), label="t")
    pair_ok = (x0.container == x1.container == "torch" and x0.shape == x1.shape and len(x0.shape) == 2
               and not {x0.dtype, x1.dtype} & {"bool", "complex64"})
    t_value = t.value if isinstance(t, Drawn) else t
    try:
        u = attempt("conditional_velocity", ["x0", "x1"], gmu.conditional_velocity, x0.value, x1.value,
                    bad=not pair_ok)
        assert u.shape == x0.value.shape
        x_t = attempt("interpolate", ["x0", "x1", "t"], gmu.interpolate, x0.value, x1.value, t_value,
                      bad=not time_ok(t, x0.shape[0]))
    except Refused:
        return
    assert x_t.shape == x0.value.shape
    if x0.special is None and x1.special is None and ((t.special is None) if isinstance(t, Drawn)
                                                      else is_real(t, -1e3, 1e3)):
        assert finite(x_t)


@FUZZ
@given(t=times)
def test_flow_matching_loss(t):
    assume(not (isinstance(t, Drawn) and t.dtype == "float64"))   # a float32 model refuses float64 x_t in torch
    t_value = t.value if isinstance(t, Drawn) else t
    try:
        loss = attempt("flow_matching_loss", ["t"], gmu.flow_matching_loss, MODELS["fm"], GOOD.flip(0), GOOD,
                       t_value, bad=not time_ok(t, len(GOOD)))
    except Refused:
        return
    if (t.special is None) if isinstance(t, Drawn) else is_real(t, -1e3, 1e3):
        assert finite(loss) and loss >= 0


# ------------------------------------------------------------------------------ solvers, training

GOOD_CONDITIONS = {"fm": st.none(), "onehot": st.sampled_from([[1.0, 0.0, 0.0], torch.eye(3)[1]]),
                   "radius": st.sampled_from([2.5, [3.0], torch.tensor([[3.5]])])}
BAD_CONDITIONS = st.sampled_from([[1.0, 0.0, 0.0], 2.5, "a", [[1.0, math.nan, 0.0]], torch.ones(2, 2, 2),
                                  1 + 1j, None])


def conditions_for(kind):
    return mostly(GOOD_CONDITIONS[kind], BAD_CONDITIONS)


@FUZZ
@given(kind=st.sampled_from(sorted(MODELS)), x0=points_arrays(containers=("torch", "torch", "meta", "numpy")),
       n_steps=mostly(st.integers(1, 4), st.integers(-2, 0), st.integers(10**6 + 1, 2**70), st.floats(),
                      st.none()),
       method=mostly(st.sampled_from(["euler", "midpoint", "heun", "rk4", "dopri5"]),
                     st.sampled_from(["RK4", "", None, 4])), data=st.data())
def test_solve_ode(kind, x0, n_steps, method, data):
    condition = data.draw(conditions_for(kind), label="condition")
    x0_ok = (x0.container == "torch" and x0.dtype not in ("bool", "complex64") and x0.special is None
             and len(x0.shape) == 2 and x0.shape[0] >= 1 and x0.shape[1] >= 1)
    if kind != "fm":
        x0_ok = x0_ok and x0.shape[1] == 2          # conditional models need 2-D points
    bad = not (x0_ok and is_count(n_steps, high=10**6) and method in ("euler", "midpoint", "heun", "rk4", "dopri5")
               and condition_ok(kind, condition) and (kind != "fm" or x0.shape[1] == 2))
    try:
        solution = attempt("solve_ode", ["x0", "n_steps", "method", "condition"], gmu.solve_ode, MODELS[kind],
                           x0.value, n_steps=n_steps, method=method, condition=condition,
                           return_trajectory=True, bad=bad)
    except Refused:
        return
    assert x0.is_points(tensor_only=True) and is_count(n_steps, high=10**6)
    assert solution.x.shape == (x0.shape[0], 2) and finite(solution.x) and finite(solution.trajectory)


@FUZZ
@given(kind=st.sampled_from(sorted(MODELS)), n_samples=counts,
       base=mostly(st.sampled_from(["gaussian", "uniform", "logo"]), st.sampled_from(["moon", "", None])),
       seed=mostly(st.none() | st.integers(0, 3), st.integers(-3, -1), st.just(2**65)), data=st.data())
def test_generate(kind, n_samples, base, seed, data):
    condition = data.draw(conditions_for(kind), label="condition")
    bad = not (is_count(n_samples) and base in ("gaussian", "uniform", "logo") and condition_ok(kind, condition)
               and (seed is None or is_count(seed, 0, 2**64 - 1)))
    try:
        out = attempt("generate", ["n_samples", "base", "condition", "seed"], gmu.generate, MODELS[kind],
                      n_samples, base=base, n_steps=3, condition=condition, seed=seed, bad=bad)
    except Refused:
        return
    assert is_count(n_samples) and out.x.shape == (n_samples, 2) and finite(out.x)


@FEW
@given(kind=st.sampled_from(sorted(MODELS)), points=points_arrays(),
       n_steps=mostly(st.integers(1, 2), st.integers(-1, 0), st.integers(10**7 + 1, 2**70), st.floats(),
                      st.text(max_size=1)),
       batch_size=counts, lr=mostly(st.floats(1e-4, 1e-2), reals),
       coupling=mostly(st.sampled_from(["independent", "ot", "class_ot"]), st.sampled_from(["sinkhorn", 3])),
       device=mostly(st.sampled_from(["cpu", None]), devices), data=st.data())
def test_train(kind, points, n_steps, batch_size, lr, coupling, device, data):
    n = points.shape[0] if points.shape else 1
    good_labels = arrays(shapes=st.just((n,)), dtypes=("int64",), containers=("numpy", "torch", "list"),
                         magnitude=5).map(lambda d: Drawn(np.abs(np.asarray(d.value)) % 3, d.shape, d.dtype,
                                                          "numpy", None))
    labels = data.draw(mostly(good_labels, arrays(shapes=st.tuples(st.integers(0, 6)), magnitude=3), st.none()),
                       label="labels") if kind == "onehot" else None
    model = small_model(type(MODELS[kind]), **MODELS[kind].config)
    try:
        result = attempt("train", ["data", "n_steps", "batch_size", "lr", "labels", "coupling", "device",
                                   "conditions"], gmu.train, model, points.value, n_steps=n_steps,
                         batch_size=batch_size, lr=lr, labels=None if labels is None else labels.value,
                         coupling=coupling, device=device, seed=0, progress=False)
    except Refused:
        return
    assert points.is_points() and is_count(n_steps, high=2) and is_real(lr, 0, low_open=True)
    assert len(result.losses) == n_steps and finite(result.losses)
    assert all(finite(p) for p in model.parameters())


def test_train_refuses_models_without_weights_or_on_meta():
    assert refused("train", "model", gmu.train, torch.nn.Identity(), GOOD, n_steps=1, progress=False)
    assert refused("train", "model", gmu.train, "net", GOOD, n_steps=1, progress=False)
    meta = small_model(hidden_dim=8).to("meta")
    assert refused("train", "model", gmu.train, meta, GOOD, n_steps=1, progress=False)
    assert refused("generate", "model", gmu.generate, meta, 4)
    assert refused("solve_ode", "model", gmu.solve_ode, 42, GOOD)


# ---------------------------------------------------------------------------------------- metrics

@FUZZ
@given(x=points_arrays(), y=points_arrays())
def test_distances(x, y):
    bad = not (x.is_points() and y.is_points())
    try:
        w2 = attempt("wasserstein2", ["x", "y"], gmu.wasserstein2, x.value, y.value, bad=bad)
    except Refused:
        return
    assert not bad and math.isfinite(w2) and w2 >= 0


@settings(max_examples=3, deadline=None)
@given(n=st.integers(10_001, 10**9))
def test_distances_refuse_huge_clouds_before_allocating(n):
    huge = torch.zeros(1, 2).expand(n, 2)          # a view: no memory behind the n rows
    assert refused("wasserstein2", ["x", "y"], gmu.wasserstein2, huge, huge, bad=True)
    assert refused("w2_floor", "n_samples", gmu.w2_floor, n, bad=True)
    assert refused("minibatch_ot_coupling", "x0", couplings.minibatch_ot_coupling, huge, huge, bad=True)


@FUZZ
@given(samples=points_arrays(), std=mostly(st.floats(0, 5), reals), n_std=mostly(st.floats(0, 5), reals),
       n_modes=counts)
def test_ring_figures(samples, std, n_std, n_modes):
    bad = not (samples.is_points() and is_real(std, 0) and is_real(n_std, 0) and is_count(n_modes, high=4096))
    try:
        fraction = attempt("off_mode_fraction", ["samples", "std", "n_std", "n_modes"], gmu.off_mode_fraction,
                           samples.value, n_modes=n_modes, std=std, n_std=n_std, bad=bad)
        counts_ = attempt("samples_per_mode", ["samples", "std", "n_std", "n_modes"], gmu.samples_per_mode,
                          samples.value, n_modes=n_modes, std=std, n_std=n_std, bad=bad)
    except Refused:
        return
    assert 0 <= fraction <= 1 and counts_.shape == (n_modes,) and counts_.sum() <= samples.shape[0]
    assert counts_.min() >= 0


@FUZZ
@given(trajectory=arrays(shapes=st.one_of(st.tuples(st.integers(0, 4), st.integers(0, 3), st.just(2)),
                                          st.lists(st.integers(0, 3), max_size=4))))
def test_path_straightness(trajectory):
    # Trajectories are measured in float64, where 1e39 is an ordinary finite number.
    bad = not (trajectory.dtype not in ("bool", "complex64", "object") and trajectory.container != "meta"
               and trajectory.special in (None, 1e39) and len(trajectory.shape) == 3 and trajectory.shape[0] >= 2
               and trajectory.shape[1] >= 1 and trajectory.shape[2] >= 1)
    try:
        value = attempt("path_straightness", "trajectory", gmu.path_straightness, trajectory.value, bad=bad)
    except Refused:
        return
    assert 0 <= value <= 1 + 1e-9


# --------------------------------------------------------------------------------------- plotting

@FEW
@given(samples=points_arrays(), data=st.one_of(st.none(), points_arrays()), n_lines=counts,
       ax=st.sampled_from([None, "axes", 3]))
def test_point_plots(samples, data, n_lines, ax):
    import matplotlib.pyplot as plt

    axes = plt.subplots()[1] if ax == "axes" else ax
    bad = not (samples.is_points() and (data is None or data.is_points()) and ax != 3)
    try:
        fig = attempt("plot_samples", ["samples", "data", "ax"], gmu.plot_samples, samples.value,
                      None if data is None else data.value, ax=axes, bad=bad)
        assert fig is not None
        if data is not None and samples.shape == data.shape:
            attempt("plot_pairs", ["x0", "x1", "n_lines", "ax"], gmu.plot_pairs, samples.value, data.value,
                    n_lines=n_lines, ax=axes)
    except Refused:
        pass
    plt.close("all")


@FEW
@given(losses=arrays(shapes=st.lists(st.integers(0, 60), max_size=2)), window=counts,
       trajectory=arrays(shapes=st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3), st.just(2)),
                                          st.lists(st.integers(0, 3), max_size=3))),
       n_paths=counts)
def test_loss_and_trajectory_plots(losses, window, trajectory, n_paths):
    import matplotlib.pyplot as plt

    for function, call, names, args in (
            ("plot_loss", gmu.plot_loss, ["losses", "window"], (losses.value,), ),
            ("plot_trajectories", gmu.plot_trajectories, ["trajectory", "n_paths"], (trajectory.value,))):
        kwargs = {"window": window} if function == "plot_loss" else {"n_paths": n_paths}
        try:
            attempt(function, names, call, *args, **kwargs)
        except Refused:
            pass
        plt.close("all")


@FEW
@given(kind=st.sampled_from(sorted(MODELS)), t=reals, n_grid=st.one_of(counts, st.integers(1001, 10**9)),
       plot=st.sampled_from(["quiver", "stream", "arrows"]),
       condition=st.one_of(st.none(), st.just([0.0, 0.0, 1.0]), st.just(2.8), st.just(math.nan),
                           st.just("x")))
def test_velocity_field_plot(kind, t, n_grid, plot, condition):
    import matplotlib.pyplot as plt

    assume(not is_count(n_grid) or n_grid <= 25)        # keep the valid grids small and fast
    try:
        attempt("plot_velocity_field", ["t", "n_grid", "kind", "condition"], gmu.plot_velocity_field,
                MODELS[kind], t, kind=plot, n_grid=n_grid, condition=condition)
    except Refused:
        pass
    plt.close("all")


@FEW
@given(keys=st.lists(st.one_of(st.integers(-2, 9), st.floats(), st.text(max_size=1), st.none()),
                     min_size=0, max_size=3, unique_by=repr),
       samples=points_arrays(), real_labels=st.one_of(st.none(), arrays(shapes=st.tuples(st.integers(0, 12)),
                                                                        magnitude=8)),
       trained_range=st.one_of(st.none(), st.just((2.3, 3.7)), st.just((math.nan, math.nan)),
                               st.just("wide"), st.just((1.0, 2.0, 3.0))))
def test_conditional_plots(keys, samples, real_labels, trained_range):
    import matplotlib.pyplot as plt

    labels = None if real_labels is None else real_labels.value
    try:
        attempt("plot_conditional_samples_discrete", ["samples_by_label", "real_labels", "real_data"],
                gmu.plot_conditional_samples_discrete, {k: samples.value for k in keys}, GOOD, labels)
    except Refused:
        pass
    try:
        attempt("plot_conditional_samples_continuous", ["samples_by_value", "trained_range"],
                gmu.plot_conditional_samples_continuous, {k: samples.value for k in keys},
                trained_range=trained_range)
    except Refused:
        pass
    plt.close("all")


# -------------------------------------------------------------------------------------- couplings

@FUZZ
@given(x0=points_arrays(containers=("torch", "torch", "meta", "numpy")),
       x1=points_arrays(containers=("torch", "torch", "meta")),
       labels=st.one_of(st.none(), arrays(shapes=st.one_of(st.tuples(st.integers(0, 6)),
                                                           st.tuples(st.integers(0, 6), st.integers(1, 3))),
                                          containers=("torch", "numpy", "meta"), magnitude=3)),
       name=st.sampled_from(["independent", "ot", "class_ot", "OT", None, 5]))
def test_couplings(x0, x1, labels, name):
    try:
        attempt("get_coupling", "coupling", couplings.get_coupling, name)
    except Refused:
        return
    pair = {"independent": gmu.independent_coupling, "ot": gmu.minibatch_ot_coupling,
            "class_ot": gmu.class_conditional_ot_coupling}[name]      # the checked doors of the entries
    function = pair.__name__
    try:
        paired = attempt(function, ["x0", "x1", "labels"], pair, x0.value, x1.value,
                         None if labels is None else labels.value)
    except Refused:
        return
    assert x0.is_points(tensor_only=True) and x1.is_points(tensor_only=True) and x0.shape == x1.shape
    # A pairing only reorders x0: the same rows, each used once.
    assert torch.equal(paired.sort(dim=0).values, x0.value.sort(dim=0).values) or \
        sorted(map(tuple, paired.tolist())) == sorted(map(tuple, x0.value.tolist()))
