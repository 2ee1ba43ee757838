"""Near-duplicates (one painting at several sizes, crops and frames) share a split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from keras_art.config import Config
from keras_art.data.catalog.hamming import pairs_within, popcount
from keras_art.data.catalog.near_duplicates import (
    group_near_duplicates,
    near_duplicates_across,
)
from keras_art.data.catalog.perceptual_hash import trim_uniform_borders
from keras_art.data.catalog.prepare import prepare_data
from keras_art.data.catalog.validate import scan_images
from tests.data.image_fixtures import letterbox, near_copies, painting_like

PAINTINGS = 12
CLASSES = ("Baroque", "Cubism", "Rococo")


def write_planted(root) -> dict[int, list[str]]:
    """``PAINTINGS`` paintings in class folders, each beside its `near_copies`;
    painting -> its files."""
    groups = {}
    for k in range(PAINTINGS):
        folder = root / CLASSES[k % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        painting = Image.fromarray(painting_like(120, 160, seed=k))
        versions = {"original": painting, **near_copies(painting)}
        groups[k] = []
        for name, image in versions.items():
            path = folder / f"p{k:02d}_{name}.jpg"
            image.save(path, "JPEG", quality=90)
            groups[k].append(str(path))
    return groups


def _cfg(tmp_path, root, **data) -> Config:
    cfg = Config(task="style")
    cfg.data.format = "folder"
    cfg.data.path = str(root)
    cfg.data.cache_dir = str(tmp_path / "cache")
    cfg.data.split = [0.5, 0.25, 0.25]
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return cfg


def test_planted_copies_share_a_split_and_paintings_stay_apart(tmp_path):
    groups = write_planted(tmp_path / "ds")
    prep = prepare_data(_cfg(tmp_path, tmp_path / "ds"))
    split_of = dict(zip(prep.files, prep.split, strict=True))
    for files in groups.values():
        assert len({split_of[f] for f in files}) == 1, files
    assert len(set(prep.split)) == 3
    report = prep.report["near_duplicates"]
    assert report["max_distance"] == 10
    # Every copy joined its painting, and no two paintings merged.
    assert (report["groups"], report["rows_in_groups"]) == (PAINTINGS, 6 * PAINTINGS)
    assert report["largest_group"] == 6
    painting_of = {f: k for k, files in groups.items() for f in files}
    for example in report["examples"]:
        assert len({painting_of[f] for f in example["files"]}) == 1
        assert example["max_distance"] <= 10
    # Some copies hash differently from their painting: the Hamming search joined them.
    assert max(e["max_distance"] for e in report["examples"]) > 0
    json.dumps(prep.report)  # data_report.json takes it as it is
    # Byte-identical grouping alone puts copies of some painting in two splits.
    apart = prepare_data(_cfg(tmp_path, tmp_path / "ds", near_duplicate_distance=None))
    split_of = dict(zip(apart.files, apart.split, strict=True))
    assert any(len({split_of[f] for f in files}) > 1 for files in groups.values())
    assert "skipped" in apart.report["near_duplicates"]


def test_scan_caches_the_hashes(tmp_path):
    painting = Image.fromarray(painting_like(120, 160, seed=1))
    painting.save(tmp_path / "a.jpg")
    letterbox(painting, (320, 180), (0, 0, 0)).save(tmp_path / "b.png")
    files = [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    first = scan_images(files, cache_dir=tmp_path / "cache")
    assert [len(h) for h in first.phashes] == [1, 2]  # b: as is, and inside its bars
    assert set(first.phashes[0]) & set(first.phashes[1]) or _close(first.phashes)
    second = scan_images(files, cache_dir=tmp_path / "cache")
    assert second.from_cache == 2 and second.phashes == first.phashes
    # A cache written before hashes existed is not trusted.
    cache = tmp_path / "cache" / "scan_cache.json"
    raw = json.loads(cache.read_text())
    for entry in raw["files"].values():
        del entry["phash"]
    cache.write_text(json.dumps({**raw, "version": 1}))
    third = scan_images(files, cache_dir=tmp_path / "cache")
    assert third.from_cache == 0 and third.phashes == first.phashes


def _close(hashes) -> bool:
    a, b = (np.array([int(h, 16) for h in row], dtype=np.uint64) for row in hashes)
    return bool(popcount(a[:, None] ^ b[None, :]).min() <= 10)


def test_trim_uniform_borders_finds_the_painting_inside_bars():
    painting = Image.fromarray(painting_like(60, 80, seed=3))
    boxed = letterbox(painting, (200, 80), (255, 255, 255))
    inner = trim_uniform_borders(boxed)
    assert abs(inner.width - 107) <= 2 and inner.height == 80  # 80x60 scaled by 4/3
    assert trim_uniform_borders(painting) is None
    assert trim_uniform_borders(Image.new("RGB", (50, 40), (9, 9, 9))) is None


def _brute_force_pairs(hashes: np.ndarray, max_distance: int) -> set:
    """Every pair within ``max_distance``, by comparing all of them."""
    found = set()
    for start in range(0, len(hashes), 1024):
        block = hashes[start : start + 1024]
        d = np.bitwise_count(block[:, None] ^ hashes[None, start:])
        i, j = np.nonzero(d <= max_distance)
        keep = i < j
        found |= set(
            zip((i[keep] + start).tolist(), (j[keep] + start).tolist(), strict=True)
        )
    return found


def _planted(n_base: int, copies: int, max_flips: int, seed: int = 0) -> np.ndarray:
    """``n_base`` random hashes, each followed by ``copies`` with up to
    ``max_flips`` bits flipped."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**63, n_base, dtype=np.uint64) << np.uint64(1)
    base |= rng.integers(0, 2, n_base, dtype=np.uint64)
    out = [base]
    for _ in range(copies):
        flips = np.zeros(n_base, dtype=np.uint64)
        for _ in range(max_flips):
            bit = rng.integers(0, 64, n_base).astype(np.uint64)
            flips |= rng.integers(0, 2, n_base).astype(np.uint64) << bit
        out.append(base ^ flips)
    return np.stack(out, axis=1).ravel()


@pytest.mark.parametrize("max_distance", [0, 3, 10, 13])
def test_pairs_within_finds_exactly_the_brute_force_pairs(max_distance):
    hashes = _planted(400, 3, 8)
    hashes[5] = hashes[9]  # equal values are pairs at distance 0
    i, j, d = pairs_within(hashes, max_distance)
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    assert pairs == _brute_force_pairs(hashes, max_distance)
    assert np.array_equal(d, popcount(hashes[i] ^ hashes[j]))
    assert np.all(i < j) and np.all(np.diff(i * len(hashes) + j) > 0)


def test_twenty_thousand_entries_group_as_brute_force_says():
    # 5,000 paintings with 3 copies each, up to 5 bits off; speed: the bench.
    hashes = _planted(5000, 3, 5, seed=1)
    hex_hashes = [[f"{int(h):016x}"] for h in hashes]
    keys = [f"k{r:05d}" for r in range(len(hashes))]
    group_keys, report = group_near_duplicates(keys, keys, hex_hashes, 10)
    expected = _components(len(hashes), _brute_force_pairs(hashes, 10))
    got = {}
    for row, key in enumerate(group_keys):
        got.setdefault(key, set()).add(row)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, expected))
    assert report["groups"] == sum(len(c) > 1 for c in expected)
    assert all(min(keys[r] for r in c) == group_keys[min(c)] for c in got.values())


def _components(n: int, pairs: set) -> list[set]:
    parent = list(range(n))

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        parent[root(a)] = root(b)
    out = {}
    for a in range(n):
        out.setdefault(root(a), set()).add(a)
    return list(out.values())


def test_groups_join_identical_bytes_and_chains_of_close_hashes():
    files = ["a", "b", "c", "d", "e", "f"]
    keys = ["k3", "k2", "k3", "k9", "k1", "k8"]
    hashes = [
        ["ff00000000000000"],
        ["ff00000000000003"],  # 2 bits from a
        [],  # c: no hash, joined to a by its bytes
        ["00ff00ff00ff00ff"],  # alone
        ["0f0f0f0f0f0f0f0f", "ff0000000000000f"],  # its second hash: 2 from b
        ["00ff00ff00ff00ff"],  # d's hash, other bytes
    ]
    group_keys, report = group_near_duplicates(files, keys, hashes, 2)
    assert list(group_keys) == ["k1", "k1", "k1", "k8", "k1", "k8"]
    assert report["groups"] == 2 and report["rows_in_groups"] == 6
    assert report["examples"][0] == {
        "images": 4,
        "max_distance": 2,
        "files": ["a", "b", "c", "e"],
    }
    assert report["examples"][1]["max_distance"] == 0
    # Byte-identical copies alone are no near-duplicate group.
    _, report = group_near_duplicates(["a", "b"], ["k", "k"], [["00"], ["00"]], 2)
    assert report["groups"] == 0
    assert list(group_near_duplicates([], [], [], 2)[0]) == []


def test_near_duplicates_across_gives_the_closest_reference_row():
    distance, match = near_duplicates_across(
        [["ff00000000000001"], ["1234123412341234"], ["ff00000000000000"]],
        [["ff00000000000007"], ["0000000000000000", "ff00000000000000"]],
        3,
    )
    assert distance.tolist() == [1, -1, 0]
    assert match.tolist() == [1, -1, 1]
