"""Sphinx configuration: the user guide (Markdown via MyST, mostly the README's sections) and the
API reference (autodoc + autosummary, numpydoc docstrings), PyData theme.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (see the README). The
API reference lists its objects in one place, ``docs/api/index.rst``.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.addnodes import pending_xref
from sphinx.domains.python import PyXRefRole
from sphinx.util.nodes import make_refnode

import gaussum

project = "gaussum"
author = "The gaussum developers"
copyright = "2026, The gaussum developers"
release = gaussum.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "images/README*"]
templates_path = ["_templates"]

# Single backticks (the default role) link to the documented object of that name, searched from
# the current module outwards (`GaussianSummary` in gaussum.inference finds gaussum.GaussianSummary),
# and are plain code when there is none: docstrings write `n` for a parameter and `GroupedSummary`
# for a class alike. Explicit roles (:class:, :func:, numpydoc's See Also) must resolve (nitpicky).
default_role = "code-or-link"

# -- autodoc / autosummary ---------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False  # a module with __all__ documents exactly what it lists
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# -- numpydoc: docstrings are rewritten often; keep the build independent of their fine details --
numpydoc_show_class_members = False  # the class template lists the methods itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- MyST: the guide includes sections of README.md --------------------------------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # included README sections start below the page's title level

# -- cross-references --------------------------------------------------------------------------
# nitpicky: every reference must resolve, except the names of other projects (no intersphinx: the
# build must work offline) and the typing names that annotations in signatures use.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|npt|scipy|matplotlib|dask|distributed|pandas|pd|pyarrow|attrs|attr)(\..*)?"),
    (r"py:.*", r"(typing|collections\.abc|types|os|pathlib|io)\..*"),
    (
        r"py:class",
        r"(ArrayLike|NDArray|DTypeLike|Self|Any|Callable|Iterable|Iterator|Mapping|Sequence|Hashable|TextIO|Path"
        r"|PathLike)",
    ),
    (r"py:class", r"(optional|array_like|array-like|scalar|default|callable|iterable|mapping|sequence|path-like)"),
]

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"gaussum {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []


class CodeOrLink(PyXRefRole):
    """The default role: a Python cross-reference that is code, not a warning, when it finds nothing."""

    def __call__(self, name, rawtext, text, lineno, inliner, options=None, content=None):
        return super().__call__("py:obj", rawtext, text, lineno, inliner, options or {}, content or [])

    def process_link(self, env, refnode, has_explicit_title, title, target):
        refnode["code_or_link"] = True
        return super().process_link(env, refnode, has_explicit_title, title, target)


def resolve_short_names(app, env, node, contnode):
    """A Python reference the exact lookup missed: link it to the one object of that name, if one.

    So `GaussianSummary` or ``GaussianSummary.from_samples`` in gaussum.dask's docstrings (a See Also
    entry included) find gaussum.GaussianSummary. Several or no matches: the default role leaves
    code, an explicit role the usual warning.
    """
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    matches = domain.find_obj(env, node.get("py:module"), node.get("py:class"), target, None, searchmode=1)
    # autodoc also records gaussum.summary.GaussianSummary (the canonical name) as an alias
    matches = [match for match in matches if not match[1].aliased] or matches
    if len(matches) == 1:
        name, entry = matches[0]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)
    return contnode if node.get("code_or_link") else None


REPOSITORY = Path(__file__).resolve().parents[1]


def repository_files_as_code(app, doctree):
    """README links to files of the repository (examples/...) have no page here: keep their text."""
    for node in list(doctree.findall(pending_xref)):
        target = node.get("reftarget", "")
        if node.get("reftype") == "myst" and target and (REPOSITORY / target).is_file():
            node.replace_self(node.children)


def setup(app):
    app.add_role("code-or-link", CodeOrLink())
    app.connect("missing-reference", resolve_short_names)
    app.connect("doctree-read", repository_files_as_code)
