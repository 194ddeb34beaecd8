"""Majority vote: most votes win; ties go to the tied class with the larger summed probability."""

from functools import partial

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils.validation import check_is_fitted

from kaggle_pipeline.estimator import LogisticStacker, VotingEnsemble
from kaggle_pipeline.vote import (
    STRATEGIES,
    VOTES,
    accuracy,
    greedy_selection,
    majority_vote,
    selection_split,
    soft_vote,
    strategy_weights,
    vote_shares,
    voted_accuracy_curve,
)


def one_hot_votes(votes, classes, confidence=0.9):
    """Runs that each put ``confidence`` on their vote and spread the rest evenly."""
    probabilities = np.full((len(votes), 1, classes), (1 - confidence) / (classes - 1))
    for run, vote in enumerate(votes):
        probabilities[run, 0, vote] = confidence
    return probabilities


def test_majority_beats_the_largest_label():
    # hyperas' VotingModel answered 1 here.
    assert majority_vote(one_hot_votes([0, 0, 0, 1], classes=2)).tolist() == [0]


def test_plain_majority_over_several_samples():
    probabilities = np.stack([
        np.eye(3)[[2, 1, 0]],
        np.eye(3)[[2, 0, 0]],
        np.eye(3)[[1, 0, 2]],
    ])
    assert majority_vote(probabilities).tolist() == [2, 0, 0]


def test_tie_is_broken_by_summed_probabilities_of_the_tied_classes():
    probabilities = np.array([
        [[0.55, 0.45, 0.0]],   # votes 0
        [[0.51, 0.0, 0.49]],   # votes 0
        [[0.0, 0.9, 0.1]],     # votes 1
        [[0.3, 0.7, 0.0]],     # votes 1
    ])
    # Votes tie 2-2 between classes 0 and 1; class 1 has 2.05 summed against 1.36.
    assert majority_vote(probabilities).tolist() == [1]


def test_untied_minority_with_high_probability_does_not_win():
    probabilities = np.array([[[0.34, 0.33, 0.33]], [[0.34, 0.33, 0.33]], [[0.0, 1.0, 0.0]]])
    assert majority_vote(probabilities).tolist() == [0]


def test_exact_tie_goes_to_the_lower_class_index():
    probabilities = np.array([[[0.0, 0.5, 0.5]], [[0.0, 0.5, 0.5]]])
    assert majority_vote(probabilities).tolist() == [1]


def test_a_single_run_votes_its_argmax():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(5), size=(1, 50))
    assert majority_vote(probabilities).tolist() == probabilities[0].argmax(axis=1).tolist()


def test_shape_is_checked():
    with pytest.raises(ValueError, match="runs, samples, classes"):
        majority_vote(np.zeros((4, 3)))


def test_voted_accuracy_curve_votes_the_first_k_runs():
    truth = np.array([0, 1, 2])
    first = np.eye(3)[[0, 1, 1]]  # right, right, wrong
    second = np.eye(3)[[2, 2, 2]]  # wrong, wrong, right
    third = np.eye(3)[[0, 1, 2]] * 0.6 + 0.1  # all right, less sure
    curve = voted_accuracy_curve(np.stack([first, second, third]), truth)
    # 2 runs: every sample is a 1-1 tie with equal summed probabilities, so the lower class index wins:
    # 0 (right), 1 (right), 1 (wrong). 3 runs: the third run breaks each tie its way.
    assert curve == pytest.approx([2 / 3, 2 / 3, 1.0])


# --- strategies -------------------------------------------------------------------------------------------




def test_soft_and_hard_votes_disagree_where_one_member_is_sure():
    probabilities = np.array([[[0.4, 0.6]], [[0.4, 0.6]], [[1.0, 0.0]]])
    assert majority_vote(probabilities).tolist() == [1]  # two votes against one
    assert soft_vote(probabilities).tolist() == [0]  # mean 0.6 against 0.4


def test_a_member_weight_counts_as_that_many_votes():
    probabilities = one_hot_votes([0, 0, 1], classes=2)
    assert majority_vote(probabilities, weights=[1, 1, 1]).tolist() == [0]
    assert majority_vote(probabilities, weights=[1, 1, 3]).tolist() == [1]  # e.g. a stacker with weight 3
    # 2 against 2: the tie goes to the class with the larger summed probability (0.9 + 0.9 + 0.1 vs 1.1).
    assert majority_vote(probabilities, weights=[1, 1, 2]).tolist() == [0]


def test_weighted_vote_weights_by_accuracy_on_the_selection_data():
    truth = np.array([0, 1, 0, 1])
    good = np.eye(2)[[0, 1, 0, 1]] * 0.8 + 0.1      # 4 of 4 right
    poor = np.eye(2)[[1, 1, 0, 0]] * 0.8 + 0.1      # 2 of 4 right
    weights = strategy_weights("weighted", np.stack([good, poor]), truth, np.ones(2))
    np.testing.assert_allclose(weights, [1.0, 0.5])
    np.testing.assert_allclose(strategy_weights("weighted", np.stack([good, poor]), truth, np.array([1.0, 2.0])), [1.0, 1.0])


def test_greedy_selection_picks_the_right_member_and_complements():
    truth = np.array([0, 1, 2, 0])
    perfect = np.eye(3)[truth] * 0.7 + 0.1
    wrong = np.eye(3)[[1, 2, 0, 1]] * 0.7 + 0.1
    assert greedy_selection(np.stack([wrong, perfect]), truth, rounds=10).tolist() == [0, 10]
    # Neither member is right alone on every row; their soft vote is. Selection finds the pair.
    left = np.array([[0.8, 0.2, 0.0], [0.45, 0.55, 0.0], [0.0, 0.4, 0.6], [0.3, 0.6, 0.1]])   # wrong on row 4
    right = np.array([[0.4, 0.6, 0.0], [0.2, 0.8, 0.0], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0]])   # wrong on row 1
    truth = np.array([0, 1, 2, 0])
    counts = greedy_selection(np.stack([left, right]), truth, rounds=2)
    assert counts.tolist() == [1, 1]
    assert soft_vote(np.stack([left, right]), counts).tolist() == truth.tolist()


def test_majority_shares_sum_to_one_and_keep_the_tie_break():
    probabilities = np.array([[[0.0, 0.5, 0.5]], [[0.0, 0.5, 0.5]]])
    shares = vote_shares(probabilities, hard=True)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares.argmax(axis=1).tolist() == [1]


def samples_first(probabilities):
    """The functions take runs first, (members, samples, classes); VotingEnsemble takes samples first."""
    return np.asarray(probabilities).transpose(1, 0, 2)


def random_members(members=4, samples=200, classes=3, seed=0):
    generator = np.random.default_rng(seed)
    truth = generator.integers(0, classes, samples)
    probabilities = generator.dirichlet(np.ones(classes), size=(members, samples))
    for member in range(members):  # members right on a member-dependent share of the rows
        right = generator.random(samples) < 0.5 + 0.1 * member
        probabilities[member, right, truth[right]] += 1.0
    return probabilities / probabilities.sum(axis=2, keepdims=True), truth


def test_learned_weights_never_see_the_half_they_are_judged_on():
    probabilities, truth = random_members()
    fit_rows, judge_rows = selection_split(len(truth), seed=0)
    assert set(fit_rows).isdisjoint(judge_rows) and len(fit_rows) + len(judge_rows) == len(truth)
    for strategy in ("weighted", "select", "logistic"):
        ensemble = VotingEnsemble(strategy=strategy).fit(samples_first(probabilities), truth)
        scrambled, scrambled_truth = probabilities.copy(), truth.copy()
        scrambled[:, judge_rows] = np.random.default_rng(1).dirichlet(np.ones(3), size=(4, len(judge_rows)))
        scrambled_truth[judge_rows] = (truth[judge_rows] + 1) % 3
        other = VotingEnsemble(strategy=strategy).fit(samples_first(scrambled), scrambled_truth)
        np.testing.assert_array_equal(ensemble.weights_, other.weights_)  # the judged half changed nothing learned
        if strategy == "logistic":
            np.testing.assert_array_equal(ensemble.stacker_.model_.coef_, other.stacker_.model_.coef_)
        assert other.validation_accuracy_ != ensemble.validation_accuracy_  # but it is what the score measures


def test_auto_picks_the_best_judged_strategy_and_predicts_with_it():
    probabilities, truth = random_members(seed=3)
    X = samples_first(probabilities)
    ensemble = VotingEnsemble(strategy="auto").fit(X, truth)
    assert set(ensemble.scores_) == {"majority", "soft", "weighted", "select", "logistic"} == set(STRATEGIES)
    assert ensemble.scores_[ensemble.strategy_] == max(ensemble.scores_.values())
    fixed = VotingEnsemble(strategy=ensemble.strategy_).fit(X, truth)
    np.testing.assert_array_equal(ensemble.predict(X), fixed.predict(X))


def test_voting_ensemble_follows_the_estimator_contract():
    probabilities, truth = random_members(seed=4)
    X = samples_first(probabilities)
    ensemble = VotingEnsemble(strategy="soft", classes=["cat", "dog", "frog"])
    assert ensemble.get_params()["strategy"] == "soft" and not hasattr(ensemble, "weights_")
    with pytest.raises(NotFittedError, match="not fitted"):
        ensemble.predict(X)
    labels = np.array(["cat", "dog", "frog"])[truth]
    assert ensemble.fit(X, labels) is ensemble
    check_is_fitted(ensemble)
    assert ensemble.classes_.tolist() == ["cat", "dog", "frog"]
    assert ensemble.predict(X).tolist() == np.array(["cat", "dog", "frog"])[soft_vote(probabilities)].tolist()
    assert ensemble.predict_proba(X).shape == (200, 3)
    assert 0.0 <= ensemble.score(X, labels) <= 1.0
    assert clone(ensemble).get_params() == ensemble.get_params()
    with pytest.raises(ValueError, match="not among the classes"):
        VotingEnsemble(strategy="soft", classes=["cat", "dog", "frog"]).fit(X, np.full(200, "emu"))
    with pytest.raises(ValueError, match="strategy 'median'"):
        VotingEnsemble(strategy="median").fit(X, truth)


def test_voting_ensemble_over_fitted_models():
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    generator = np.random.default_rng(0)
    features = generator.normal(size=(300, 4))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    members = [LogisticRegression().fit(features[:150], labels[:150]),
               DecisionTreeClassifier(max_depth=2, random_state=0).fit(features[:150], labels[:150])]
    ensemble = VotingEnsemble(strategy="soft", members=members).fit(features[150:], labels[150:])
    expected = (members[0].predict_proba(features) + members[1].predict_proba(features)).argmax(axis=1)
    assert ensemble.predict(features).tolist() == expected.tolist()


# --- scikit-learn's estimator checks ----------------------------------------------------------------------
#
# VotingEnsemble's X is (samples, members, classes), so its tags say three_d_array=True, two_d_array=False,
# and for such tags check_estimator runs check_estimator_cloneable only. The checks are therefore named here
# and run one by one. APPLICABLE ones need no data, or only y, or test a refusal that holds for 3-D input
# (sparse, complex, 1-D X). Every other check sklearn yields for a 2-D classifier is in NOT_APPLICABLE with
# the reason; those that feed 2-D (samples, features) data have 3-D counterparts in
# test_the_estimator_contract_on_three_dimensional_input below. test_every_sklearn_check_is_sorted fails when
# a scikit-learn upgrade adds a check, so that it gets sorted too.



APPLICABLE = (
    "check_estimator_cloneable", "check_estimator_tags_renamed", "check_valid_tag_types", "check_estimator_repr",
    "check_no_attributes_set_in_init", "check_estimators_unfitted", "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order", "check_parameters_default_constructible", "check_get_params_invariance", "check_set_params",
    "check_requires_y_none", "check_classifiers_regression_target", "check_supervised_y_no_nan", "check_complex_data",
    "check_fit1d", "check_estimator_sparse_tag", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
)
TWO_D = "fits on 2-D (samples, features) data, which VotingEnsemble refuses; the 3-D test below covers it"
NOT_APPLICABLE = {
    **{name: TWO_D for name in (
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_estimators_dtypes",
        "check_dtype_object", "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
        "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array", "check_classifiers_classes",
        "check_classifiers_train", "check_supervised_y_2d", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_dict_unchanged", "check_fit_idempotent",
        "check_fit_check_is_fitted", "check_fit2d_predict1d", "check_estimators_empty_data_messages",
        "check_classifiers_one_label")},
    "check_fit2d_1sample": "2-D data; a 3-D single sample fits as before (its fitting half is empty, so weighted "
                           "and select warn 'Mean of empty slice' and keep base weights or pick member 0)",
    "check_fit2d_1feature": "2-D by name; the 3-D counterpart, one member or one class, fits",
    "check_n_features_in": "no n_features_in_: X is 3-D; n_members_ and len(classes_) are checked at predict",
    "check_n_features_in_after_fitting": "as check_n_features_in (and it returns at once for 3-D tags)",
    "check_positive_only_tag_during_fit": "feeds 2-D data with negative values (X is probabilities)",
    "check_array_api_input": "array API inputs are not supported (numpy only)",
    "check_classifiers_one_label_sample_weights": "fit takes no sample_weight",
    "check_estimators_partial_fit_n_features": "no partial_fit",
    "check_non_transformer_estimators_n_iter": "no max_iter",
    "check_decision_proba_consistency": "no decision_function",
}


def _check_name(check) -> str:
    return check.func.__name__ if isinstance(check, partial) else check.__name__


def _sklearn_checks() -> list:
    """Every check sklearn yields for a classifier that takes 2-D input (for 3-D tags it yields none)."""

    class TwoDimensional(VotingEnsemble):
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.input_tags.two_d_array, tags.input_tags.three_d_array = True, False
            return tags

    return [estimator_checks.check_estimator_cloneable,
            *estimator_checks._yield_all_checks(TwoDimensional(), legacy=True)]


def test_every_sklearn_check_is_sorted():
    names = {_check_name(check) for check in _sklearn_checks()}
    assert names == set(APPLICABLE) | set(NOT_APPLICABLE), names ^ (set(APPLICABLE) | set(NOT_APPLICABLE))
    assert not set(APPLICABLE) & set(NOT_APPLICABLE)


@pytest.mark.parametrize("name", APPLICABLE)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_applicable_sklearn_checks(name):
    checks = [check for check in _sklearn_checks() if _check_name(check) == name]
    assert checks
    for check in checks:
        check("VotingEnsemble", VotingEnsemble())


def test_the_estimator_contract_on_three_dimensional_input():
    """The 2-D checks above, for X shaped (samples, members, classes)."""
    import pickle

    from sklearn.model_selection import cross_val_score, train_test_split
    from sklearn.pipeline import make_pipeline

    probabilities, truth = random_members(seed=5)
    X = samples_first(probabilities)
    for strategy in VOTES:
        ensemble = VotingEnsemble(strategy=strategy)
        params = ensemble.get_params()
        assert ensemble.fit(X, truth) is ensemble and ensemble.get_params() == params  # returns self, params untouched
        check_is_fitted(ensemble)
        assert ensemble.n_members_ == 4 and ensemble.classes_.tolist() == [0, 1, 2]
        predicted, shares = ensemble.predict(X), ensemble.predict_proba(X)
        np.testing.assert_allclose(shares.sum(axis=1), 1.0)
        state = {key: np.copy(value) if isinstance(value, np.ndarray) else value for key, value in vars(ensemble).items()}
        ensemble.predict(X), ensemble.predict_proba(X), ensemble.score(X, truth)
        assert vars(ensemble).keys() == state.keys()  # predicting changes nothing
        for key, value in state.items():
            np.testing.assert_array_equal(vars(ensemble)[key], value) if isinstance(value, np.ndarray) else None
        np.testing.assert_array_equal(clone(ensemble).fit(X, truth).predict(X), predicted)  # fit is idempotent
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(ensemble)).predict(X), predicted)
        order = np.random.default_rng(0).permutation(len(X))
        np.testing.assert_array_equal(ensemble.predict(X[order]), predicted[order])  # sample order
        np.testing.assert_array_equal(ensemble.predict(X[:7]), predicted[:7])  # subsets
        np.testing.assert_array_equal(ensemble.predict(X.tolist()), predicted)  # not an array
        np.testing.assert_array_equal(ensemble.predict(np.asfortranarray(X)), predicted)
        readonly = X.copy()
        readonly.flags.writeable = False
        np.testing.assert_array_equal(ensemble.predict(readonly), predicted)
        np.testing.assert_array_equal(make_pipeline(VotingEnsemble(strategy=strategy)).fit(X, truth).predict(X), predicted)
    float32 = VotingEnsemble(strategy="soft").fit(X.astype(np.float32), truth)
    assert float32.predict_proba(X.astype(np.float32)).dtype == np.float64
    assert VotingEnsemble(strategy="soft").fit(X[:, :1], truth).predict(X[:, :1]).tolist() == X[:, 0].argmax(axis=1).tolist()
    with pytest.warns(DataConversionWarning):
        VotingEnsemble().fit(X, truth[:, None])  # a column of labels

    # Refused input, each with a ValueError.
    fitted = VotingEnsemble().fit(X, truth)
    for bad in (X[:, :, 0], X[..., None], X[:0], X[:, :0], X[:, :, :0]):
        with pytest.raises(ValueError):
            VotingEnsemble().fit(bad, truth[:len(bad)])
    for value in (np.nan, np.inf):
        spoiled = X.copy()
        spoiled[3, 1, 2] = value
        with pytest.raises(ValueError, match="NaN|infinity"):
            VotingEnsemble().fit(spoiled, truth)
        with pytest.raises(ValueError, match="NaN|infinity"):
            fitted.predict(spoiled)
    with pytest.raises(ValueError, match="X has 3 members and 3 classes; fitted with 4 and 3"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="199 labels for 200 samples"):
        VotingEnsemble().fit(X, truth[1:])
    with pytest.raises(ValueError, match="Unknown label type"):
        VotingEnsemble().fit(X, truth + 0.5)

    # scikit-learn's tools split the samples axis.
    X_fit, X_test, y_fit, y_test = train_test_split(X, truth, test_size=0.25, random_state=0)
    assert X_fit.shape == (150, 4, 3) and X_test.shape == (50, 4, 3)
    assert VotingEnsemble(strategy="soft").fit(X_fit, y_fit).score(X_test, y_test) == accuracy(soft_vote(
        samples_first(X_test)), y_test)
    assert cross_val_score(VotingEnsemble(strategy="soft"), X, truth, cv=4).shape == (4,)


def test_the_docstring_examples_run():
    import doctest

    import kaggle_pipeline.estimator

    failures, attempted = doctest.testmod(kaggle_pipeline.estimator, verbose=False)
    assert attempted > 0 and failures == 0


def test_the_logistic_stacker_learns_what_no_vote_can():
    # One member is always right; another is confidently wrong in a fixed way (it answers the next class):
    # a vote is hurt by it, the level-2 stacker learns to read it.
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 4, size=400)
    shifted = np.full((400, 4), 0.02)
    shifted[np.arange(400), (truth + 1) % 4] = 0.94
    noisy = rng.dirichlet(np.ones(4), size=(2, 400))
    X = np.stack([shifted, shifted, noisy[0], noisy[1]], axis=1)  # samples first
    ensemble = VotingEnsemble(strategy="auto").fit(X, truth)
    assert ensemble.strategy_ == "logistic" and ensemble.stacker_ is not None
    assert ensemble.scores_["logistic"] > 0.95 > max(ensemble.scores_[name] for name in STRATEGIES if name != "logistic")
    assert ensemble.predict_proba(X).shape == (400, 4)
    np.testing.assert_allclose(ensemble.predict_proba(X).sum(axis=1), 1.0)


def test_the_logistic_stacker_is_not_scored_on_what_it_fitted():
    # Members and labels are noise: fitted and judged on the same rows its 30 inputs would find patterns;
    # judged on the other half it is at chance.
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 5, size=300)
    X = rng.dirichlet(np.ones(5), size=(300, 6))
    ensemble = VotingEnsemble(strategy="logistic").fit(X, truth)
    assert ensemble.validation_accuracy_ < 0.32
    fit_rows, _ = selection_split(300, seed=0)
    in_sample = accuracy(LogisticStacker(Cs=(10.0,)).fit(X[fit_rows], truth[fit_rows]).predict_proba(X[fit_rows]).argmax(axis=1),
                         truth[fit_rows])
    assert in_sample > ensemble.validation_accuracy_ + 0.1


def test_the_logistic_stacker_with_classes_missing_or_alone():
    X = np.random.default_rng(7).dirichlet(np.ones(4), size=(12, 2))
    truth = np.array([0] * 5 + [1] * 5 + [3] * 2)  # class 2 never seen; class 3 too rare to cross-validate
    stacker = LogisticStacker().fit(X, truth)
    probabilities = stacker.predict_proba(X)
    assert probabilities.shape == (12, 4) and (probabilities[:, 2] == 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert stacker.C_ == 1.0  # the middle strength when folds cannot be stratified
    alone = LogisticStacker().fit(X, np.full(12, 2)).predict_proba(X)
    assert (alone.argmax(axis=1) == 2).all() and (alone.sum(axis=1) == 1).all()
    with pytest.raises(ValueError, match="fitted with 2 members"):
        stacker.predict_proba(X[:, :1])
    # Through the ensemble: a strategy that cannot be fitted does not break auto.
    ensemble = VotingEnsemble(strategy="auto").fit(X, np.full(12, 2))
    assert (ensemble.predict(X) == 2).all()
