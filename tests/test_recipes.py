"""Runs from several search trials (``ensemble --recipes K``, RECIPES=K, issue 15's diverse members): the recipes
are the best distinct successful trials, best_params.json's first; runs take them in turn, a resume keeps the mix,
a recipe whose first attempts were all rejected is dropped, and submit votes the mixed members. Tiny data, tiny
nets, real search, real CLI."""

from __future__ import annotations

from conftest import run_cli, run_in_process, write_csv_competition

from kaggle_pipeline.ensemble import MAX_FAILED_RECIPE_ATTEMPTS, next_recipe, search_recipes
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.store import SearchTrials, SubmissionStore
from kaggle_pipeline.workspace import open_workspace

A, B, C = TINY_PARAMS, {**TINY_PARAMS, "conv1_dropout": 0.2}, {**TINY_PARAMS, "conv1_dropout": 0.3}


def trial(tid: int, params: dict, loss: float | None) -> dict:
    result = {"status": "fail", "error": "out of memory"} if loss is None else \
        {"status": "ok", "loss": loss, "params": params, "validation_accuracy": 1 - loss, "seed": 1}
    return {"tid": tid, "state": 2, "result": result}


def test_the_recipes_are_the_best_distinct_successful_trials_best_params_first(tmp_path):
    store = open_workspace(write_csv_competition(tmp_path / "pixels", count=30, test_count=6), tmp_path / "models").store
    assert search_recipes(store, A, 3) == [A]  # no trials.json (a store made without a search): the best only
    store.write_trials(SearchTrials.of({"space": "tiny"}, [
        trial(0, C, 0.5), trial(1, A, 0.3), trial(2, B, None), trial(3, A, 0.3), trial(4, B, 0.45), trial(5, C, 0.45)]))
    assert search_recipes(store, A, 1) == [A]
    assert search_recipes(store, A, 2) == [A, B]  # the duplicate of A skipped, the failed trial too; a tie: earlier
    assert search_recipes(store, A, 9) == [A, B, C]
    # best_params.json leads even where a trial scored better (a user chose it, or a rerun of the search).
    assert search_recipes(store, C, 2) == [C, A]


def test_the_next_run_takes_the_recipe_with_fewest_attempts_and_drops_one_never_kept():
    done = lambda params, kept: {"params": params, "status": "done", "kept": kept}  # noqa: E731
    assert next_recipe([], [], [A, B], []) == A
    assert next_recipe([done(A, True)], [], [A, B], [done(A, True)]) == B
    assert next_recipe([done(A, True)], [B], [A, B], [done(A, True)]) == A  # one under way counts
    assert next_recipe([done(A, True), done(B, True)], [], [A, B, C], []) == C
    # B's first attempts were all rejected: the runs stay with A (the best recipe is never dropped).
    rejected = [done(B, False)] * MAX_FAILED_RECIPE_ATTEMPTS
    assert next_recipe([done(A, True)] * 3 + rejected, [], [A, B], [done(A, True)] * 3) == A
    # A recipe other than the first, all its attempts rejected, is dropped even with fewer attempts; the first never.
    assert next_recipe([done(B, False)] * 3 + [done(A, False)] * MAX_FAILED_RECIPE_ATTEMPTS, [], [B, A], []) == B
    # One of B's attempts kept: B stays in the cycle.
    mixed = [done(A, True)] * 4 + rejected + [done(B, True)]
    assert next_recipe(mixed, [], [A, B], [done(A, True)] * 4 + [done(B, True)]) == B


def test_runs_alternate_between_the_searchs_best_trials_resume_and_submit(tmp_path):
    data = write_csv_competition(tmp_path / "pixels", count=90, test_count=30)
    common = ["--data", data, "--models-dir", tmp_path / "models"]
    searched = run_in_process("search", *common, "--space", "tiny", "--evals", "3", "--search-epochs", "1", cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    store = open_workspace(data, tmp_path / "models").store
    best = store.best_params()["params"]
    ranked = search_recipes(store, best, 2)
    assert len(ranked) == 2 and ranked[0] == best

    ensemble = ["ensemble", *common, "--epochs", "1", "--no-tta", "--threshold", "0", "--recipes", "2"]
    finished = run_cli(*ensemble, "--n", "3", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    runs = store.run_records(repair=False)
    assert [record["params"] for record in runs] == [ranked[0], ranked[1], ranked[0]]
    assert store.ensemble_settings()["recipes"] == ranked
    # A resume continues the cycle from what is on disk (in this process, as the stages after the first CLI one).
    assert run_in_process(*ensemble, "--n", "4", cwd=tmp_path).returncode == 0
    assert [record["params"] for record in store.run_records(repair=False)][3:] == [ranked[1]]
    # More recipes than the search has distinct trials: said, and runs come from those there are.
    more = run_in_process(*ensemble, "--n", "5", "--recipes", "9", cwd=tmp_path)
    assert more.returncode == 0 and "distinct successful trial(s); runs are trained from 3" in more.stderr

    submitted = run_in_process("submit", *common, "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    summary = SubmissionStore(tmp_path / "submissions", "pixels").latest()
    assert summary["runs_voted"] == 5


def test_recipes_below_one_is_one_line_naming_the_option(tmp_path):
    data = write_csv_competition(tmp_path / "pixels", count=30, test_count=6)
    finished = run_cli("ensemble", "--data", data, "--models-dir", tmp_path / "models", "--recipes", "0", cwd=tmp_path)
    assert finished.returncode != 0 and "--recipes" in finished.stderr and "Traceback" not in finished.stderr
    assert len(finished.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "models").exists()


def test_a_damaged_trials_file_is_one_line_naming_it_and_nothing_changes(tmp_path):
    data = write_csv_competition(tmp_path / "pixels", count=30, test_count=6)
    common = ["--data", data, "--models-dir", tmp_path / "models"]
    assert run_in_process("search", *common, "--space", "tiny", "--evals", "2", "--search-epochs", "1", cwd=tmp_path).returncode == 0
    store = open_workspace(data, tmp_path / "models").store
    for damage in ('{"settings": {}, "trials": [{"tid": 0}]}', "not json", '{"settings": {}}'):
        store.trials_path.write_text(damage)
        before = sorted((path, path.read_bytes()) for path in (tmp_path / "models").rglob("*") if path.is_file())
        finished = run_cli("ensemble", *common, "--epochs", "1", "--recipes", "2", cwd=tmp_path)
        assert finished.returncode != 0 and "Traceback" not in finished.stderr
        assert len(finished.stderr.strip().splitlines()) == 1 and "trials.json" in finished.stderr
        assert sorted((path, path.read_bytes()) for path in (tmp_path / "models").rglob("*") if path.is_file()) == before
