"""The WikiArt TFDS builder: TFDS's own builder checks; offline use, no stall."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import tensorflow_datasets as tfds  # an install requirement: never skipped

import keras_art
from keras_art.data.sources.embedded_sample import write_sample
from keras_art.data.sources.tfds_builder import builder_class

# tests/data/sources/<this file>: parents[3] is the repository root, the folder the
# fresh process below must import keras_art from.
REPO = Path(__file__).resolve().parents[3]


def _listed(csv_root: Path, stem: str) -> set[str]:
    """Paths in any task's train (stem "train") or val list, parsed independently."""
    paths = set()
    for f in csv_root.glob(f"*/*_{stem}*"):
        for line in f.read_text().splitlines():
            if line.strip() and not line.startswith("(Path"):
                paths.add(line.split(",")[0])
    return paths


try:
    # tfds.testing needs these two (dev dependencies, not tensorflow-datasets deps).
    import dill  # noqa: F401
    import importlib_resources  # noqa: F401
except ImportError as exc:
    _MISSING_DEV_EXTRA = exc
else:
    _MISSING_DEV_EXTRA = None

if _MISSING_DEV_EXTRA is None:

    class WikiartRefinedTest(tfds.testing.DatasetBuilderTestCase):
        DATASET_CLASS = builder_class()
        SPLITS = {}

        @classmethod
        def setUpClass(cls):
            cls._fixture = tempfile.mkdtemp(prefix="wikiart_fixture_")
            write_sample(cls._fixture, num_images=32, seed=5)
            csv = Path(cls._fixture) / "wikiart_csv"
            cls.EXAMPLE_DIR = cls._fixture
            cls.SPLITS = {
                "train": len(_listed(csv, "train")),
                "validation": len(_listed(csv, "val")),
            }
            super().setUpClass()

        @classmethod
        def tearDownClass(cls):
            super().tearDownClass()
            shutil.rmtree(cls._fixture, ignore_errors=True)

else:

    def test_tfds_builder_test_case():
        pytest.fail(
            f"TFDS's builder checks (tfds.testing) need the dev extras dill and "
            f"importlib_resources: pip install -e '.[dev]' ({_MISSING_DEV_EXTRA})",
            pytrace=False,
        )


# Runs in a fresh process whose environment does NOT pre-disable GCS: the code under
# test must do it. The timeout only bounds the test (a GCS probe stalls ~60 s each).
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras_art
    from keras_art.config import DataConfig
    from keras_art.data.sources.embedded_sample import ensure_sample
    from keras_art.data.sources.tfds_builder import load_tfds_catalog

    cache = sys.argv[1]
    root = ensure_sample(cache, num_images=32, seed=2)
    cfg = DataConfig(format="tfds", path=str(root), cache_dir=cache)
    cat = load_tfds_catalog(cfg)
    again = load_tfds_catalog(cfg)
    data_dir = cache + "/tfds"
    prepared = sorted(__import__("pathlib").Path(data_dir).glob("*/data"))[0]
    cat2 = load_tfds_catalog(
        DataConfig(format="tfds", path=str(prepared), cache_dir=cache)
    )
    print(json.dumps({
        "keras_art": keras_art.__file__,
        "root": str(root),
        "n": len(cat), "n_again": len(again), "n_prepared": len(cat2),
        "files": cat.files,
        "labels": {t: a.tolist() for t, a in cat.labels.items()},
        "class_names": cat.class_names, "class_names2": cat2.class_names,
        "split": cat.official_split.tolist(),
        "source": cat.source, "notes": cat.notes,
    }))
    """
)


def test_offline_prepare_and_extract_in_a_fresh_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NO_GCE_CHECK"}
    env["PYTHONPATH"] = str(REPO)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # The fresh process tested this checkout's code (PYTHONPATH=REPO), not another
    # keras_art the environment has installed.
    assert Path(out["keras_art"]).resolve() == Path(keras_art.__file__).resolve()
    assert Path(out["keras_art"]).is_relative_to(REPO)
    root = Path(out["root"])
    assert out["source"] == "tfds"
    assert out["n"] == out["n_again"] == out["n_prepared"]
    assert out["class_names"] == out["class_names2"]
    assert out["class_names"]["style"][1] == "Art_Nouveau"
    # Every listed image is there once per split it is listed in, with its labels.
    style_val = {
        line.split(",")[0]: int(line.rsplit(",", 1)[1])
        for line in (root / "wikiart_csv/Style/style_val.csv").read_text().splitlines()
    }
    assert out["split"].count("val") == len(style_val)
    for file, split, style in zip(
        out["files"], out["split"], out["labels"]["style"], strict=True
    ):
        rel = "/".join(Path(file).parts[-2:])  # <StyleFolder>/<file>.jpg
        original = (root / "wikiart" / rel).read_bytes()
        assert Path(file).read_bytes() == original  # bytes as released
        if split == "val":
            assert style == style_val[rel]
    assert any("listed as train for one task" in n for n in out["notes"])
    assert "Extracting the TFDS images once" in proc.stdout
    assert proc.stdout.count("Extracting the TFDS images once") == 1


def test_bad_path_is_a_user_error(tmp_path):
    from keras_art.config import DataConfig
    from keras_art.data.sources.tfds_builder import load_tfds_catalog
    from keras_art.errors import UserError

    with pytest.raises(UserError, match="no such folder"):
        load_tfds_catalog(DataConfig(format="tfds", path=str(tmp_path / "nope")))
    with pytest.raises(UserError, match="neither a WikiArt folder"):
        load_tfds_catalog(DataConfig(format="tfds", path=str(tmp_path)))
