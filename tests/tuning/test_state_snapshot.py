"""The snapshot of KerasTuner's state files that makes a search survive kill -9."""

import keras_tuner

from tuning import state_snapshot


def _tiny_search(directory, max_trials, ran=None):
    """A RandomSearch whose score is its ``units`` value; ``ran`` collects the ids
    of the trials this call actually runs."""

    def build(hp):
        import keras

        hp.Int("units", 1, 4)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        return model

    class Tuner(keras_tuner.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            if ran is not None:
                ran.append(trial.trial_id)
            return {"val_f1": float(trial.hyperparameters.get("units"))}

    tuner = Tuner(
        hypermodel=build,
        objective=keras_tuner.Objective("val_f1", "max"),
        max_trials=max_trials,
        directory=str(directory),
        project_name="p",
        seed=1,
    )
    tuner.search(verbose=0)
    return tuner


def test_kerastuner_still_writes_the_files_the_snapshot_copies(tmp_path):
    # Fails loudly if KerasTuner renames or moves its state files.
    _tiny_search(tmp_path, 2)
    project = tmp_path / "p"
    names = {str(p) for p in state_snapshot.state_files(project)}
    assert {"oracle.json", "tuner0.json"} <= names
    assert len([n for n in names if n.endswith("/trial.json")]) == 2


def _finished(tuner):
    """{trial id: (hyperparameter values, score)} of the completed trials."""
    return {
        t.trial_id: (dict(t.hyperparameters.values), t.score)
        for t in tuner.oracle.trials.values()
        if t.status == "COMPLETED"
    }


def test_a_cut_state_file_is_restored_from_the_last_snapshot(tmp_path):
    first = _tiny_search(tmp_path, 2)
    before = _finished(first)
    assert len(before) == 2
    project = tmp_path / "p"
    oracle_before = (project / "oracle.json").read_bytes()
    state_snapshot.save(project)
    # A third trial started, then the process died while writing oracle.json.
    (project / "trial_9").mkdir()
    (project / "trial_9" / "trial.json").write_text("{}")
    (project / "oracle.json").write_text('{"ongoing_tr')
    assert state_snapshot.restore_if_broken(project) == "restored"
    assert not (project / "trial_9").exists()
    # oracle.json is back byte for byte as it was before the cut.
    assert (project / "oracle.json").read_bytes() == oracle_before
    # KerasTuner reloads it and runs the third trial only: the first two keep
    # their hyperparameters and scores (a search started afresh would run 3).
    ran = []
    tuner = _tiny_search(tmp_path, 3, ran)
    assert len(ran) == 1 and ran[0] not in before
    after = _finished(tuner)
    assert set(after) == set(before) | set(ran)
    assert {k: after[k] for k in before} == before
    assert after[ran[0]][0] not in [hp for hp, _ in before.values()]


def test_nothing_to_restore(tmp_path):
    _tiny_search(tmp_path, 1)
    project = tmp_path / "p"
    assert state_snapshot.restore_if_broken(project) is None
    (project / "oracle.json").write_text("")
    assert state_snapshot.restore_if_broken(project) == "fresh"
