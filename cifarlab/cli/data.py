"""``cifarlab data``: load (and cache) a dataset and describe it."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``data`` sub-command."""
    p = sub.add_parser("data", help="load, cache and describe a dataset",
                       description="Load CIFAR-10 (decoding and caching it on first use) and describe it.")
    p.add_argument("--data", metavar="PATH",
                   help="CIFAR-10 python archive/folder, or ImageFolder tree/archive (default: download to cache)")
    p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: $CIFARLAB_CACHE or ~/.cache/cifarlab)")
    p.add_argument("--val-size", type=int, default=5000, metavar="N",
                   help="validation images held out of train, class-stratified (default 5000)")
    p.add_argument("--json", action="store_true", help="print the description as JSON")


def run(args: argparse.Namespace) -> int:
    """Load the dataset as ``args`` say and describe it as text or JSON."""
    import time
    from pathlib import Path

    import numpy as np

    from cifarlab.data import default_cache_dir, load_dataset, split_train_val
    from cifarlab.data.cache import arrays_dir, cache_file
    from cifarlab.formatting import duration

    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    # A hit is a cache file that was there before and was not rewritten by the load.
    before = {f: f.stat().st_mtime_ns for f in arrays_dir(cache_dir).glob("*.npz")}
    start = time.perf_counter()
    data = load_dataset(args.data, cache_dir=cache_dir, progress=not args.json)
    seconds = time.perf_counter() - start
    _, val = split_train_val(data.train_labels, args.val_size)
    cached = cache_file(cache_dir, data.fingerprint)
    info = {"source": data.source, "fingerprint": data.fingerprint, "cache_file": str(cached),
            "cache_hit": cached in before and cached.is_file() and cached.stat().st_mtime_ns == before[cached],
            "train": len(data.train_labels), "test": len(data.test_labels), "validation": len(val),
            "classes": data.classes,
            "train_per_class": np.bincount(data.train_labels, minlength=len(data.classes)).tolist(),
            "test_per_class": np.bincount(data.test_labels, minlength=len(data.classes)).tolist(),
            "seconds": round(seconds, 3)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"source       {info['source']}")
    print(f"fingerprint  {info['fingerprint'][:12]}")
    written = "written" if cached.is_file() else "not written: see the warning"
    print(f"cache file   {info['cache_file']} ({'hit' if info['cache_hit'] else written})")
    print(f"images       train {info['train']}, test {info['test']}; validation {info['validation']} "
          f"held out of train (class-stratified), leaving {info['train'] - info['validation']}")
    print(f"  {'class':<12}{'train':>7}{'test':>7}")
    for name, n_train, n_test in zip(info["classes"], info["train_per_class"], info["test_per_class"]):
        print(f"  {name:<12}{n_train:>7}{n_test:>7}")
    print(f"loaded in {duration(info['seconds'])}")
    return 0
