"""Shared fixtures: a private cache dir, seeded RNGs and a float32 policy per test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_GCE_CHECK", "true")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Generated data goes to a temporary cache, never the user's ~/.cache."""
    os.environ["KERAS_ART_CACHE"] = str(tmp_path_factory.mktemp("keras_art_cache"))
    yield


@pytest.fixture(autouse=True)
def _seed_and_policy():
    import keras

    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


def pytest_addoption(parser):
    parser.addoption(
        "--run-large",
        action="store_true",
        default=False,
        help="also run tests marked large (minutes each: full demo training runs)",
    )


def pytest_collection_modifyitems(config, items):
    # keras-hub's --run_large: the default run (CI) stays well under 15 minutes.
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large: run with --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smoke_multi_run(tmp_path_factory):
    """One finished multi-task run of the smoke preset (about 30 s), shared by the
    evaluation and export tests, which only read it (evaluate adds eval/)."""
    from keras_art.config import build_config
    from keras_art.training.train import train

    workdir = tmp_path_factory.mktemp("runs")
    cfg, _ = build_config(
        "smoke",
        overrides=[
            f"workdir={workdir}",
            "run_name=r",
            "task=multi",
            "model.weights=none",
        ],
    )
    return train(cfg.validate()).run_dir
