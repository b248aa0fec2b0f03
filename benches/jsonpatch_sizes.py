"""Patch sizes and diff times of python-json-patch on the series written by
`cargo run --release --example patch_sizes -- --write DIR`.

    pip install jsonpatch==1.47
    python3 benches/jsonpatch_sizes.py DIR
"""

import json
import sys
import time
from pathlib import Path

import jsonpatch


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def main(directory):
    print("| series | pairs | snapshot bytes | python jsonpatch | time per pair |")
    print("|---|---|---|---|---|")
    for name in ["quotes", "quotes_sorted", "news", "tweets"]:
        docs = json.loads((Path(directory) / f"{name}.json").read_text())
        snapshots = patches = 0
        elapsed = 0.0
        for old, new in zip(docs, docs[1:]):
            start = time.perf_counter()
            patch = jsonpatch.make_patch(old, new)
            elapsed += time.perf_counter() - start
            assert patch.apply(old) == new
            snapshots += len(compact(new).encode())
            patches += len(compact(patch.patch).encode())
        pairs = len(docs) - 1
        print(
            f"| {name} | {pairs} | {snapshots} | {100 * patches / snapshots:.2f}% "
            f"| {1e6 * elapsed / pairs:.0f} µs |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
