"""``--seeds``: one config trained once per seed into a group, continued by running
the same command again. Training itself is a stand-in here (a run directory with a
summary), so these tests check the group: which configs the repeats get, what is
skipped, resumed or restarted, and the one-line refusals."""

import json

import pytest

from keras_art.config import build_config
from keras_art.errors import ParameterError
from keras_art.run_dir import GroupDir, RunDir, write_checkpoint
from keras_art.train import main
from keras_art.training.repeats import group_table, train_repeats


def config(workdir, *overrides):
    cfg, _ = build_config(
        "smoke", overrides=[f"workdir={workdir}", "task=artist", *overrides]
    )
    return cfg.validate()


class FakeTrain:
    """`train`'s stand-in: writes the run's config and summary, records calls."""

    def __init__(self, fail_on_seed=None):
        self.calls, self.fail_on_seed = [], fail_on_seed

    def __call__(self, cfg, *, resume=False):
        self.calls.append((cfg, resume))
        run = RunDir(f"{cfg.workdir}/{cfg.run_name}")
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(cfg.to_json())
        if cfg.train.seed == self.fail_on_seed:
            write_checkpoint(run.checkpoints, 1, [], [], {"epoch": 1})
            raise RuntimeError("killed")  # after its first epoch's checkpoint
        top1 = 0.5 + cfg.train.seed / 10
        metrics = {"artist": {"top1": top1, "macro_f1": top1 - 0.1}}
        run.write_summary({"metrics": {"test": metrics}})


def test_one_run_per_seed_sharing_everything_but_the_train_seed(tmp_path):
    fake, seen = FakeTrain(), []
    cfg = config(tmp_path)
    result = train_repeats(
        cfg, [3, 0, 7], train_fn=fake, after_each=lambda run, s: seen.append(run.name)
    )
    group = GroupDir(result.group_dir)
    assert group.name == "artist-cnn_rnn-seeds-3-0-7"
    assert [p.name for p in result.runs] == ["seed-3", "seed-0", "seed-7"]
    assert seen == ["seed-3", "seed-0", "seed-7"]
    trained = [c for c, _ in fake.calls]
    assert [c.train.seed for c in trained] == [3, 0, 7]
    assert not any(resume for _, resume in fake.calls)
    # Everything else, the data split included, is the config given.
    shared = [json.loads(c.to_json()) for c in trained]
    for raw in shared:
        assert raw["data"]["split_seed"] == cfg.data.split_seed
        assert raw["workdir"] == str(group.path)
        raw["train"].pop("seed"), raw.pop("run_name")
    assert shared[0] == shared[1] == shared[2]
    manifest = group.read_manifest()
    assert manifest["seeds"] == [3, 0, 7] and manifest["varies"] == "train.seed"
    assert "seed" not in manifest["config"]["train"]
    assert cfg.train.seed == 42  # the caller's config is left as it was
    table = group_table(result)
    assert "mean ± sd" in table and "0.833" in table  # mean of 0.8, 0.5, 1.2


def test_running_again_skips_finished_and_resumes_the_killed_repeat(tmp_path):
    cfg = config(tmp_path)
    with pytest.raises(RuntimeError, match="killed"):
        train_repeats(cfg, [0, 1, 2], train_fn=FakeTrain(fail_on_seed=1))
    again = FakeTrain()
    train_repeats(config(tmp_path), [0, 1, 2], train_fn=again)
    # seed 0 finished: skipped; seed 1 resumes from its checkpoint with its own
    # config.json; seed 2 never started: a fresh run.
    assert [(c.run_name, resume) for c, resume in again.calls] == [
        ("seed-1", True),
        ("seed-2", False),
    ]
    third = FakeTrain()
    train_repeats(config(tmp_path), [0, 1, 2], train_fn=third)
    assert third.calls == []


def test_a_repeat_killed_before_its_first_checkpoint_starts_again(tmp_path):
    cfg = config(tmp_path)
    train_repeats(cfg, [0, 1], train_fn=FakeTrain())
    group = GroupDir(tmp_path / "artist-cnn_rnn-seeds-0-1")
    started = group.run(1)
    started.summary.unlink()
    (started.path / "leftover.txt").write_text("half an epoch")
    again = FakeTrain()
    train_repeats(cfg, [0, 1], train_fn=again)
    assert [(c.run_name, resume) for c, resume in again.calls] == [("seed-1", False)]
    assert not (started.path / "leftover.txt").exists()


def test_other_settings_or_seeds_under_the_same_name_are_refused(tmp_path):
    train_repeats(config(tmp_path, "run_name=g"), [0, 1], train_fn=FakeTrain())
    with pytest.raises(ParameterError, match=r"other settings \(train.epochs: 2"):
        train_repeats(
            config(tmp_path, "run_name=g", "train.epochs=3"), [0, 1],
            train_fn=FakeTrain(),
        )  # fmt: skip
    with pytest.raises(
        ParameterError, match=r"^run_name .*g: a group of seeds \[0, 1\]"
    ):
        train_repeats(config(tmp_path, "run_name=g"), [0, 1, 2], train_fn=FakeTrain())


@pytest.mark.parametrize(
    "seeds, words",
    [([0], "at least two seeds"), ([1, 1], "repeated"), ([0, -1], "non-negative")],
)
def test_bad_seeds_name_the_parameter(tmp_path, seeds, words):
    with pytest.raises(ParameterError, match=rf"^seeds .*{words}"):
        train_repeats(config(tmp_path), seeds, train_fn=FakeTrain())
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--seeds", "0"], "--seeds [0]: a group needs at least two seeds"),
        (["--seeds", "0,x"], "--seeds 0,x: expected integers"),
        (["--seeds", "0,1", "--resume"], "--seeds with --resume"),
        (["--seeds", "0,1", "--seed", "3"], "--seeds with --seed"),
    ],
)
def test_train_command_refuses_bad_seeds_in_one_line(tmp_path, capsys, argv, words):
    code = main(["--preset", "smoke", "--workdir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err, err
