"""Couplings: exact OT against brute force, class-aware OT stays within classes."""
import itertools

import pytest
import torch

from gen_models_utilities.couplings import (COUPLINGS, class_conditional_ot_coupling, get_coupling,
                                            independent_coupling, minibatch_ot_coupling, ot_permutation)


def pairing_cost(x0_paired, x1):
    return float((x0_paired - x1).pow(2).sum())


def brute_force_cost(x0, x1):
    """The smallest total squared distance over every way of pairing the rows."""
    return min(pairing_cost(x0[list(p)], x1) for p in itertools.permutations(range(len(x0))))


@pytest.mark.parametrize("n", [2, 5, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ot_pairing_matches_brute_force(n, seed):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(n, 2, generator=g), 3 * torch.randn(n, 2, generator=g)
    permutation = ot_permutation(x0, x1)
    assert sorted(permutation.tolist()) == list(range(n))          # each x0 used exactly once
    assert pairing_cost(minibatch_ot_coupling(x0, x1), x1) == pytest.approx(brute_force_cost(x0, x1), abs=1e-9)


def test_ot_pairing_beats_the_random_pairing():
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(64, 2, generator=g), 3 * torch.randn(64, 2, generator=g)
    assert pairing_cost(minibatch_ot_coupling(x0, x1), x1) < pairing_cost(independent_coupling(x0, x1), x1)


def test_independent_coupling_keeps_the_draw():
    x0, x1 = torch.randn(6, 2), torch.randn(6, 2)
    assert independent_coupling(x0, x1) is x0


def make_classes(seed, sizes=(3, 4, 2)):
    """x1 from a few far-apart clusters with labels (B,), and base points x0 (B, 2)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    labels = labels[torch.randperm(len(labels), generator=g)]
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    x1 = centres[labels] + 0.3 * torch.randn(len(labels), 2, generator=g)
    return torch.randn(len(labels), 2, generator=g), x1, labels


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_class_ot_never_pairs_across_classes(seed):
    x0, x1, labels = make_classes(seed)
    paired = class_conditional_ot_coupling(x0, x1, labels)
    for k in labels.unique():
        rows = labels == k
        # The x0 rows given to class k are the x0 rows that were drawn for class k, re-ordered.
        assert sorted(map(tuple, paired[rows].tolist())) == sorted(map(tuple, x0[rows].tolist()))
        # and within the class the pairing is the optimal one.
        assert pairing_cost(paired[rows], x1[rows]) == pytest.approx(brute_force_cost(x0[rows], x1[rows]), abs=1e-9)


def test_plain_ot_does_cross_classes_where_class_ot_does_not():
    # Two classes whose base points were drawn near the other class: plain OT swaps them.
    x1 = torch.tensor([[4.0, 0.0], [-4.0, 0.0]])
    x0 = torch.tensor([[-3.0, 0.0], [3.0, 0.0]])
    labels = torch.tensor([0, 1])
    assert torch.equal(minibatch_ot_coupling(x0, x1, labels), x0.flip(0))
    assert torch.equal(class_conditional_ot_coupling(x0, x1, labels), x0)


def test_labels_stay_with_their_points():
    # The coupling re-orders x0 only, so x1 and its labels or one-hot codes keep their rows;
    # integer labels and one-hot codes describe the same classes and give the same pairing.
    x0, x1, labels = make_classes(5)
    x1_before, labels_before = x1.clone(), labels.clone()
    by_index = class_conditional_ot_coupling(x0, x1, labels)
    by_code = class_conditional_ot_coupling(x0, x1, torch.nn.functional.one_hot(labels, 3).float())
    torch.testing.assert_close(by_index, by_code)
    assert torch.equal(x1, x1_before) and torch.equal(labels, labels_before)


def test_class_ot_without_labels_is_plain_ot():
    x0, x1, _ = make_classes(6)
    torch.testing.assert_close(class_conditional_ot_coupling(x0, x1), minibatch_ot_coupling(x0, x1))


def test_get_coupling_by_name_and_refuses_unknown_names():
    assert get_coupling("ot") is COUPLINGS["ot"].pair
    assert get_coupling("class_ot") is COUPLINGS["class_ot"].pair
    assert get_coupling(independent_coupling) is independent_coupling
    with pytest.raises(ValueError, match="coupling"):
        get_coupling("sinkhorn")


def test_mismatched_batches_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        minibatch_ot_coupling(torch.randn(4, 2), torch.randn(5, 2))


def awkward_batch(case, seed):
    """Small (x0, x1) batches that are hard for a solver: ties, tiny B, mixed scales, far clusters."""
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    if case == "one point":
        return x0[:1], x1[:1]
    if case == "two points":
        return x0[:2], x1[:2]
    if case == "duplicates":
        return x0[[0, 0, 1, 1, 2, 2]], x1[[0, 1, 1, 1, 2, 3]]
    if case == "all equal":
        return torch.ones(6, 2), torch.ones(6, 2)
    if case == "mixed scales":
        return 1e-3 * x0, 1e3 * x1
    return x0 + torch.tensor([[50.0, 0.0]] * 3 + [[-50.0, 0.0]] * 3), x1   # far clusters


@pytest.mark.parametrize("case", ["one point", "two points", "duplicates", "all equal", "mixed scales",
                                  "far clusters"])
@pytest.mark.parametrize("seed", [0, 1])
def test_ot_pairing_is_exact_on_awkward_batches(case, seed):
    x0, x1 = awkward_batch(case, seed)
    permutation = ot_permutation(x0, x1)
    assert sorted(permutation.tolist()) == list(range(len(x0)))
    best = brute_force_cost(x0.double(), x1.double())
    assert pairing_cost(x0.double()[permutation], x1.double()) == pytest.approx(best, rel=1e-9, abs=1e-9)
    assert torch.equal(ot_permutation(x0, x1), permutation)                    # deterministic


@pytest.mark.parametrize("block_size, seed", [(3, 0), (4, 1), (5, 2)])
def test_blockwise_ot_is_exact_inside_each_block_and_never_mixes_blocks(block_size, seed):
    from gen_models_utilities.couplings import blockwise_ot_coupling

    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(11, 2, generator=g), 3 * torch.randn(11, 2, generator=g)
    paired = blockwise_ot_coupling(block_size)(x0, x1)
    for start in range(0, 11, block_size):
        rows = slice(start, start + block_size)
        # the block's own base points, re-ordered (none borrowed from another block) ...
        assert sorted(map(tuple, paired[rows].tolist())) == sorted(map(tuple, x0[rows].tolist()))
        # ... in the optimal order for that block
        assert pairing_cost(paired[rows], x1[rows]) == pytest.approx(brute_force_cost(x0[rows], x1[rows]), abs=1e-9)


def test_blockwise_ot_with_one_block_is_plain_ot_and_smaller_blocks_cost_more():
    from gen_models_utilities.couplings import COUPLINGS, blockwise_ot_coupling

    g = torch.Generator().manual_seed(4)
    x0, x1 = torch.randn(256, 2, generator=g), 3 * torch.randn(256, 2, generator=g)
    torch.testing.assert_close(blockwise_ot_coupling(256)(x0, x1), minibatch_ot_coupling(x0, x1))
    costs = [pairing_cost(COUPLINGS[name].pair(x0, x1), x1) for name in ("ot", "ot_block128", "ot_block64")]
    assert costs[0] < costs[1] < costs[2] < pairing_cost(x0, x1)
    assert get_coupling("ot_block64").__name__ == "ot_block64"


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-4, ValueError), (2.5, TypeError), (10**6, ValueError)])
def test_blockwise_ot_refuses_bad_block_sizes(bad, error):
    from gen_models_utilities.couplings import blockwise_ot_coupling

    with pytest.raises(error, match="block_size"):
        blockwise_ot_coupling(bad)


@pytest.mark.parametrize("n", [64, 65])      # SciPy's solver up to SMALL_BLOCK points, POT's above
def test_both_block_solvers_find_the_exact_ot_pairing(n):
    from gen_models_utilities.couplings import SMALL_BLOCK, blockwise_ot_coupling

    assert SMALL_BLOCK == 64
    g = torch.Generator().manual_seed(n)
    x0, x1 = torch.randn(n, 2, generator=g), 3 * torch.randn(n, 2, generator=g)
    torch.testing.assert_close(blockwise_ot_coupling(n)(x0, x1), minibatch_ot_coupling(x0, x1))
