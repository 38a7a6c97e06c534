"""Agreement statistics against hand-computed values and values from scikit-learn / scipy.

The reference values marked "sklearn" / "scipy" were computed once with scikit-learn 1.x
(``cohen_kappa_score``, ``confusion_matrix``) and scipy (``spearmanr``, ``pearsonr``) and are
hard-coded here, so the tests need neither.
"""

from __future__ import annotations

import math

import pytest

from rftjudge.calibration import (
    accuracy,
    agreement,
    cohen_kappa,
    confusion_matrix,
    label_accuracy,
    mean,
    pearson,
    position_consistency,
    rank,
    spearman,
)

TRUTH = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 3, 3, 4, 5, 2]
PRED = [1, 3, 3, 4, 4, 5, 5, 2, 2, 1, 3, 4, 4, 5, 1]
SCORES = [0.1, 0.4, 0.35, 0.8, 0.7, 0.9, 0.95, 0.3, 0.3, 0.05, 0.5, 0.6, 0.75, 0.99, 0.2]


# -- hand-computed -----------------------------------------------------------------------------


def test_kappa_by_hand() -> None:
    # p_o = 3/4; p_e = 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa = (0.75 - 0.5) / 0.5
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)


def test_perfect_and_inverted_quadratic_kappa_by_hand() -> None:
    assert cohen_kappa([1, 2, 3], [1, 2, 3], weights="quadratic") == pytest.approx(1.0)
    # labels 1..3: both items off by 2 positions (weight 4); expected mass 0.5 on each corner
    assert cohen_kappa([1, 3], [3, 1], labels=[1, 2, 3], weights="quadratic") == pytest.approx(-1.0)


def test_kappa_undefined_when_chance_agreement_is_perfect() -> None:
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) is None
    assert cohen_kappa([], []) is None


def test_pearson_by_hand() -> None:
    # dx = (-1, 0, 1), dy = (-7/3, -1/3, 8/3): r = 5 / sqrt(2 * 114/9) = 15 / sqrt(228)
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_correlations_undefined_for_constant_or_tiny_input() -> None:
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert spearman([4, 4], [1, 2]) is None
    assert pearson([1], [2]) is None


def test_rank_averages_ties() -> None:
    assert rank([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]
    assert rank([3, 1, 2]) == [3.0, 1.0, 2.0]
    assert rank([5, 5, 5]) == [2.0, 2.0, 2.0]


def test_spearman_is_pearson_on_ranks() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_accuracy_and_tolerance() -> None:
    assert accuracy([1, 2, 3, 4], [1, 3, 3, 1]) == pytest.approx(0.5)
    assert accuracy([1, 2, 3, 4], [1, 3, 3, 1], tolerance=1) == pytest.approx(0.75)
    assert accuracy([], []) is None
    assert label_accuracy(["A", "B"], ["A", "tie"]) == pytest.approx(0.5)


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        accuracy([1, 2], [1])
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa([1], [1, 2])


def test_confusion_matrix_rows_are_truth() -> None:
    assert confusion_matrix(["A", "A", "B"], ["A", "B", "B"], ["A", "B"]) == [[1, 1], [0, 1]]
    # labels outside the list are left out
    assert confusion_matrix([1, 9], [1, 1], [1, 2]) == [[1, 0], [0, 0]]
    with pytest.raises(ValueError, match="distinct"):
        confusion_matrix([1], [1], [1, 1])


def test_small_helpers() -> None:
    assert mean([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    assert mean([]) is None
    assert position_consistency([True, False, True, True]) == pytest.approx(0.75)
    assert position_consistency([]) is None


# -- against scikit-learn / scipy (values hard-coded from a one-off run) -------------------------


def test_matches_sklearn_kappas() -> None:
    assert cohen_kappa(TRUTH, PRED) == pytest.approx(0.5)  # sklearn
    assert cohen_kappa(TRUTH, PRED, weights="quadratic") == pytest.approx(0.8918269230769231)
    assert cohen_kappa(TRUTH, PRED, weights="linear") == pytest.approx(0.7398843930635839)
    labels_a = ["A", "B", "tie", "A", "B", "A", "tie", "B"]
    labels_b = ["A", "B", "A", "A", "tie", "B", "tie", "B"]
    assert cohen_kappa(labels_a, labels_b, ["A", "B", "tie"]) == pytest.approx(0.4285714285714286)


def test_matches_sklearn_confusion_matrix() -> None:
    assert confusion_matrix(TRUTH, PRED, [1, 2, 3, 4, 5]) == [
        [2, 0, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 1, 2, 1, 0],
        [0, 0, 0, 2, 1],
        [0, 0, 0, 1, 2],
    ]


def test_matches_scipy_correlations() -> None:
    assert spearman(TRUTH, SCORES) == pytest.approx(0.9043792971791768)  # scipy spearmanr
    assert pearson(TRUTH, SCORES) == pytest.approx(0.9175479067418095)  # scipy pearsonr
    assert spearman(TRUTH, PRED) == pytest.approx(0.899441340782123)  # ties on both sides


def test_unknown_weights_rejected() -> None:
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([1, 2], [2, 1], weights="cubic")  # type: ignore[arg-type]


# -- the bundle ----------------------------------------------------------------------------------


def test_agreement_ordinal_bundle() -> None:
    result = agreement(TRUTH, PRED, [1, 2, 3, 4, 5], scores=SCORES, ordinal=True)
    assert result.n == 15
    assert result.accuracy == pytest.approx(9 / 15)
    assert result.kappa == pytest.approx(0.5)
    assert result.weighted_kappa == pytest.approx(0.8918269230769231)
    assert result.adjacent_accuracy == pytest.approx(1.0)
    assert result.spearman == pytest.approx(0.9043792971791768)
    assert result.label_distribution == (2, 3, 4, 3, 3)
    assert result.pred_distribution == (3, 2, 3, 4, 3)
    assert result.confusion[0] == (2, 0, 0, 0, 0)


def test_agreement_nominal_has_no_ordinal_measures() -> None:
    result = agreement(["A", "B", "tie"], ["A", "B", "B"], ["A", "B", "tie"])
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.weighted_kappa is None and result.spearman is None
    assert result.pred_distribution == (1, 2, 0)


def test_agreement_scores_must_align() -> None:
    with pytest.raises(ValueError, match="scores"):
        agreement([1, 2], [1, 2], [1, 2], scores=[0.5], ordinal=True)
