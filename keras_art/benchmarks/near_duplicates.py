"""Near-duplicate grouping: seconds to group a catalog's perceptual hashes.

    python -m keras_art.bench near-duplicates --json /tmp/near.json
    python -m keras_art.bench near-duplicates --entries 80000 --brute-force

Synthetic 64-bit hashes stand in for a scanned catalog: ``--entries`` of them, a
``--planted`` share being copies of another entry with up to ``--flips`` bits
flipped (WikiArt's resized and cropped copies sit 0-10 bits from their painting).
``group_near_duplicates`` (the multi-index search, then connected components) is
timed over ``--rounds`` runs; ``--brute-force`` also times comparing every pair in
numpy blocks, the simple way it replaces. The result checks itself: every planted
copy must share its painting's group.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from keras_art.benchmarks import progress
from keras_art.errors import ParameterError

NAME = "near-duplicates"
HELP = "seconds to group N perceptual hashes into near-duplicate groups"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``python -m keras_art.bench near-duplicates``."""
    parser.add_argument("--entries", type=int, default=20_000, help="hashes to group")
    parser.add_argument(
        "--max-distance", type=int, default=10, help="bits that link two hashes"
    )
    parser.add_argument(
        "--planted", type=float, default=0.1, help="share of entries that are copies"
    )
    parser.add_argument("--flips", type=int, default=6, help="bits a copy differs by")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs; median")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--brute-force", action="store_true", help="also time comparing every pair"
    )


def synthetic_hashes(entries: int, planted: float, flips: int, seed: int):
    """``entries`` random hashes, the last ``planted`` share copies of earlier
    ones with up to ``flips`` bits flipped; and the entry each copy copies."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, entries, dtype=np.uint64) << np.uint64(1)
    hashes |= rng.integers(0, 2, entries, dtype=np.uint64)
    copies = int(entries * planted)
    source = rng.integers(0, entries - copies, copies)
    noise = np.zeros(copies, dtype=np.uint64)
    for _ in range(flips):
        bit = rng.integers(0, 64, copies).astype(np.uint64)
        noise |= np.uint64(1) << bit
    hashes[entries - copies :] = hashes[source] ^ noise
    return hashes, source


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> int:
    """Pairs within ``max_distance``, counted by comparing all of them."""
    from keras_art.data.catalog.hamming import popcount

    # numpy >= 2 counts bits natively: the fairest brute force.
    count_bits = getattr(np, "bitwise_count", popcount)
    found = 0
    for start in range(0, len(hashes), 1024):
        d = count_bits(hashes[start : start + 1024, None] ^ hashes[None, start:])
        found += int(np.count_nonzero(np.triu(d <= max_distance, 1)))
    return found


def run(args: argparse.Namespace) -> dict:
    """Entry point (``keras_art.bench`` registry): time the grouping."""
    from keras_art.data.catalog.hamming import pairs_within
    from keras_art.data.catalog.near_duplicates import group_near_duplicates
    from keras_art.runtime_info import peak_rss_mb, versions

    if args.entries < 2 or not 0 <= args.planted < 1 or args.rounds < 1:
        raise ParameterError(
            "{entries} must be at least 2, {planted} in [0, 1) and {rounds} at least "
            f"1. Received: {args.entries}, {args.planted}, {args.rounds}"
        )
    hashes, source = synthetic_hashes(args.entries, args.planted, args.flips, args.seed)
    keys = [f"{r:08d}" for r in range(len(hashes))]
    hex_hashes = [[f"{int(h):016x}"] for h in hashes]
    seconds = []
    for k in range(args.rounds):
        start = time.perf_counter()
        group_keys, report = group_near_duplicates(
            keys, keys, hex_hashes, args.max_distance
        )
        seconds.append(time.perf_counter() - start)
        progress(f"round {k + 1}/{args.rounds}: {seconds[-1]:.2f} s")
    copies = np.arange(len(source)) + len(hashes) - len(source)
    result = {
        "entries": args.entries,
        "max_distance": args.max_distance,
        "planted_copies": len(source),
        "copies_grouped": int(np.sum(group_keys[copies] == group_keys[source])),
        "groups": report["groups"],
        "pairs": len(pairs_within(hashes, args.max_distance)[0]),
        "seconds": round(statistics.median(seconds), 3),
        "seconds_per_round": [round(s, 3) for s in seconds],
    }
    if args.brute_force:
        start = time.perf_counter()
        result["brute_force_pairs"] = brute_force_pairs(hashes, args.max_distance)
        result["brute_force_seconds"] = round(time.perf_counter() - start, 3)
    return {**result, "peak_rss_mb": round(peak_rss_mb(), 1), **versions()}
