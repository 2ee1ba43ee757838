"""The snapshot of KerasTuner's state files that makes a search survive kill -9."""

import json

import keras_tuner

from tuning import state_snapshot


def _tiny_search(directory, max_trials):
    def build(hp):
        import keras

        hp.Int("units", 1, 4)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        return model

    class Tuner(keras_tuner.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
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


def test_a_cut_state_file_is_restored_from_the_last_snapshot(tmp_path):
    _tiny_search(tmp_path, 2)
    project = tmp_path / "p"
    state_snapshot.save(project)
    # A third trial started, then the process died while writing oracle.json.
    (project / "trial_9").mkdir()
    (project / "trial_9" / "trial.json").write_text("{}")
    (project / "oracle.json").write_text('{"ongoing_tr')
    assert state_snapshot.restore_if_broken(project) == "restored"
    assert not (project / "trial_9").exists()
    json.loads((project / "oracle.json").read_text())
    # KerasTuner reloads it and goes on to the third trial only.
    tuner = _tiny_search(tmp_path, 3)
    assert len(tuner.oracle.trials) == 3


def test_nothing_to_restore(tmp_path):
    _tiny_search(tmp_path, 1)
    project = tmp_path / "p"
    assert state_snapshot.restore_if_broken(project) is None
    (project / "oracle.json").write_text("")
    assert state_snapshot.restore_if_broken(project) == "fresh"
