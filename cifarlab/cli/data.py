"""``cifarlab data``: load (and cache) a dataset and describe it."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``data`` sub-command."""
    p = sub.add_parser("data", help="load, cache and describe a dataset")
    p.add_argument("--data", metavar="PATH", help="dataset path (default: the cached or downloaded official archive)")
    p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default $CIFARLAB_CACHE or ~/.cache/cifarlab)")
    p.add_argument("--val-size", type=int, default=5000, metavar="N", help="validation split size (default 5000)")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the dataset and print what it holds."""
    import time
    from pathlib import Path

    import numpy as np

    from cifarlab.data import cache, default_cache_dir, load_dataset, split_train_val

    t0 = time.perf_counter()
    data = load_dataset(args.data, cache_dir=args.cache_dir, progress=not args.json)
    seconds = time.perf_counter() - t0
    _, val = split_train_val(data.train_labels, args.val_size)
    info = {
        "source": data.source,
        "fingerprint": data.fingerprint,
        "cache_file": str(cache.cache_file(Path(args.cache_dir or default_cache_dir()), data.fingerprint)),
        "train": int(len(data.train_labels)),
        "test": int(len(data.test_labels)),
        "validation": int(len(val)),
        "classes": data.classes,
        "train_per_class": np.bincount(data.train_labels, minlength=10).tolist(),
        "test_per_class": np.bincount(data.test_labels, minlength=10).tolist(),
        "seconds": round(seconds, 3),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"source      {info['source']}\nfingerprint {info['fingerprint']}\ncache       {info['cache_file']}")
    print(f"images      train {info['train']}, test {info['test']} "
          f"(validation {info['validation']} held out of train, class-stratified)")
    print(f"{'class':<12}{'train':>7}{'test':>6}")
    for c, a, b in zip(data.classes, info["train_per_class"], info["test_per_class"]):
        print(f"{c:<12}{a:>7}{b:>6}")
    print(f"loaded in {seconds:.2f}s")
    return 0
