"""Sphinx configuration of the dans documentation (``sphinx-build -W docs docs/_build``).

Sphinx rather than MkDocs: its autodoc reads the package's reST docstrings as they are written,
sphinx-argparse documents every command from the parser the command line itself uses, and
``-W`` turns every broken reference between pages into an error.
"""

from dans.version import __version__

project = "dans"
author = "The dans authors"
copyright = "the dans authors"
release = version = __version__
extensions = ["sphinx.ext.autodoc", "myst_parser", "sphinxarg.ext"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
html_theme = "furo"
html_title = f"dans {__version__}"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
