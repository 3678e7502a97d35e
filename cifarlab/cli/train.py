"""``cifarlab train``: train a preset or config, or resume a killed run."""

from __future__ import annotations

import argparse

# Shortcut options: flag -> (config key, argparse options). argparse types each value and it is
# set as that value; re-read as YAML text, `--data 2024` would become an integer and `--data null` None.
_SHORTCUTS: dict[str, tuple[str, dict]] = {
    "--data": ("data.path", {"metavar": "PATH", "help": "CIFAR-10 python archive/folder, or ImageFolder "
                                                        "tree/archive (default: download to cache)"}),
    "--epochs": ("train.epochs", {"type": int, "metavar": "N", "help": "shortcut for --set train.epochs=N"}),
    "--max-train-images": ("data.max_train_images", {"type": int, "metavar": "N",
                                                     "help": "shortcut for --set data.max_train_images=N"}),
    "--seed": ("train.seed", {"type": int, "metavar": "N", "help": "shortcut for --set train.seed=N"}),
    "--device": ("train.device", {"choices": ["auto", "cpu", "cuda"], "help": "shortcut for --set train.device=..."}),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``train`` sub-command."""
    p = sub.add_parser("train", help="train a network (a preset, a config file, overrides)",
                       description="Train a network. Config layers compose in order: --preset (default: the "
                                   "config file's 'preset:' key, else seed), --config FILE, --set KEY=VALUE, "
                                   "then the shortcut options.")
    p.add_argument("--preset", help="shipped preset to start from (see `cifarlab train --list-presets`)")
    p.add_argument("--config", metavar="FILE", help="YAML config file composed on top of the preset")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override one config key, e.g. --set optim.lr=1e-3 (repeatable)")
    for flag, (key, options) in _SHORTCUTS.items():
        p.add_argument(flag, dest=key, **options)
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/<preset>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (epoch lines still print)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--list-presets", action="store_true", help="list the shipped presets and exit")


def run(args: argparse.Namespace) -> int:
    """Compose the config and train."""
    from cifarlab import config as config_mod
    from cifarlab.errors import ConfigError
    from cifarlab.training.trainer import train

    if args.list_presets:
        print("\n".join(config_mod.list_presets()))
        return 0
    typed = [(key, vars(args)[key]) for key, _ in _SHORTCUTS.values()]
    overrides = list(args.overrides) + [(key, value) for key, value in typed if value is not None]
    if args.resume:
        if args.preset or args.config or overrides:
            raise ConfigError("--resume continues a run with its recorded config; drop the other config options")
        train(resume=args.resume, progress=not args.no_progress)
        return 0
    cfg = config_mod.compose(args.preset, args.config, overrides)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    train(cfg, out_dir=args.out, progress=not args.no_progress)
    return 0
