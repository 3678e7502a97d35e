"""A Griffe extension for the API reference: Sphinx cross-reference roles in docstrings become links.

cifarlab's docstrings are prose in reStructuredText's spelling (``code``, :class:`Config`), read in a terminal
and in ``help()``. Markdown renders the double backticks as code but would print a role such as :class: as text;
this turns each role into an optional cross-reference: a link where the target is on the site, plain code where
it is not (optional, so an undocumented target is no warning under ``mkdocs build --strict``).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|data|meth|attr|mod|exc|obj|const):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is None:
            return

        def link(match: re.Match) -> str:
            name = match[1]
            try:
                target = name if "." in name else obj.resolve(name)
            except griffe.NameResolutionError:
                return f"`{name}`"
            return f'<autoref identifier="{target}" optional><code>{name}</code></autoref>'

        obj.docstring.value = _ROLE.sub(link, obj.docstring.value)
