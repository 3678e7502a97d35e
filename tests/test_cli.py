"""What every ``cifarlab`` sub-command shares: ``main()`` as a function other programs call."""

from __future__ import annotations

import warnings

from cifarlab.cli import main


def test_main_gives_the_warning_format_back(tmp_path, capsys):
    before = warnings.formatwarning
    assert main(["runs", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("cifarlab runs: error:")
    # main() shows warnings as one line while it runs; a program that called it keeps its own format after.
    assert warnings.formatwarning is before
