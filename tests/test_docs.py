"""The documentation's promises that ``mkdocs build --strict`` cannot check: every public name is in the API
reference, under its public spelling, and the README stays a short front door whose links lead somewhere.

The site's build (``make docs``, in CI) checks links, anchors and that every ``:::`` entry resolves; the browser
test (``test_docs_browser.py``) that the built pages load without console errors.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import cifarlab

REPO = Path(__file__).resolve().parent.parent
API_PAGE = REPO / "docs" / "api.md"
README = REPO / "README.md"
README_MAX_LINES = 250  # issue 22: the README is the front door; the reference lives in docs/

_ENTRY = re.compile(r"^::: *(\S+)\n((?:    .*\n)*)", re.MULTILINE)
_HEADING = re.compile(r"^ +heading: *(\S+) *$", re.MULTILINE)


def api_entries(text: str) -> list[tuple[str, str | None]]:
    """``(identifier, heading)`` of every mkdocstrings entry on a page; heading None when the entry has none."""
    entries = []
    for match in _ENTRY.finditer(text):
        heading = _HEADING.search(match[2])
        entries.append((match[1], heading[1] if heading else None))
    return entries


def resolve(identifier: str) -> object:
    """The object at a dotted ``identifier`` as Griffe (mkdocstrings) finds it: where a package holds both a
    submodule and an attribute of one name, the submodule (so ``cifarlab.evaluation.evaluate`` is the module, not
    the function the package imports from it)."""
    parts = identifier.split(".")
    obj, path = importlib.import_module(parts[0]), parts[0]
    for part in parts[1:]:
        path = f"{path}.{part}"
        is_package = hasattr(obj, "__path__")
        obj = importlib.import_module(path) if is_package and importlib.util.find_spec(path) else getattr(obj, part)
    return obj


def test_entries_are_read_with_their_headings():
    page = "# API\n\n::: pkg.mod.func\n    options:\n      heading: pkg.func\n\n::: pkg.Other\n\ntext\n"
    assert api_entries(page) == [("pkg.mod.func", "pkg.func"), ("pkg.Other", None)]


def test_the_resolver_takes_a_submodule_over_the_package_attribute_of_its_name_as_griffe_does():
    from cifarlab.evaluation import evaluate as module_or_function

    assert callable(module_or_function)
    assert resolve("cifarlab.evaluation.evaluate.evaluate") is cifarlab.evaluate
    assert resolve("cifarlab.evaluation.evaluate").__name__ == "cifarlab.evaluation.evaluate"  # the module
    assert resolve("cifarlab.training.trainer.train") is cifarlab.train


def test_every_public_name_is_documented_in_the_api_reference_under_its_public_spelling():
    entries = api_entries(API_PAGE.read_text())
    public = {f"cifarlab.{name}": name for name in cifarlab.__all__}
    headed = {heading: identifier for identifier, heading in entries if heading is not None}
    missing = sorted(h for h in public if h not in headed)
    assert not missing, (f"{API_PAGE.relative_to(REPO)} has no entry for {missing}: add '::: <defining module>.<name>' "
                         "with 'options: heading: cifarlab.NAME' (see docs/development.md, 'This site')")
    stale = sorted(h for h in headed if h.startswith("cifarlab.") and h.count(".") == 1 and h not in public)
    assert not stale, f"entries headed as public names that cifarlab.__all__ does not have: {stale}"
    wrong = {heading: identifier for heading, identifier in headed.items()
             if heading in public and resolve(identifier) is not getattr(cifarlab, public[heading])}
    assert not wrong, f"these entries document something other than the public name they are headed with: {wrong}"


def test_the_readme_is_a_short_front_door_whose_relative_links_exist():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES, "the reference belongs in docs/, the README is the front door"
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not t.startswith(("http://", "https://", "#"))]
    assert local, "the README links into the documentation"
    assert [t for t in local if not (REPO / t).exists()] == []
    assert {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md") if p.name != "frontier.md"} <= set(local), \
        "every page of the documentation is linked from the README"
