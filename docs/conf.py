"""Sphinx configuration of the documentation site.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (the ``docs``
extra installs what it needs). The API reference is generated from the docstrings; the
tutorials are the notebooks of ``notebooks/`` as committed (not executed at build time); the
benchmark tables are generated from the records in ``benchmarks/results/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import snn  # noqa: E402

project = "snn"
author = "the snn developers"
copyright = "the snn developers"
release = snn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
    "generated_pages",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"

# API reference from the docstrings (Google style).
autosummary_generate = True
templates_path = ["_templates"]  # module pages: the docstrings and the submodules, no tables
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_class_signature = "separated"
autodoc_mock_imports = ["cupy"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Tutorials: the notebooks are committed without outputs and are not run here (the test suite
# runs them); MyST-NB renders their code and text.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# Every cross-reference to this library must resolve (a broken one fails the build). References
# to other libraries are not checked: their inventories would have to be downloaded.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!snn\.).*"),  # other libraries, and type words of Napoleon sections
    (r"py:.*", r"snn(\.\w+)*\._\w+(\..*)?"),  # private modules and classes (bases, helpers)
]

html_theme = "alabaster"
html_title = f"snn {release}"
html_static_path: list[str] = []


# Each object is documented once, where users import it from: in the public module that
# defines it, or, when it is defined in a private module (``snn.datasets.io._common``), in the
# first public package that re-exports it in ``__all__``. _documented_at maps the defining
# path to the documented one so that references resolve.
_current_module: list[str] = [""]
_documented_at: dict[str, str] = {}


def _is_public(module: str) -> bool:
    return not any(part.startswith("_") for part in module.split("."))


def _has_page(module: str) -> bool:
    """A public module with its own API page (not one hidden behind a same-named function)."""
    import importlib
    import types

    if not (module.startswith("snn") and _is_public(module)):
        return False
    parent, _, last = module.rpartition(".")
    shadowed = parent and not isinstance(
        getattr(importlib.import_module(parent), last, None), types.ModuleType
    )
    return not shadowed and (DOCS / "api" / "_autosummary" / f"{module}.rst").is_file()


def _track_module(app, what, name, obj, options, lines):
    if what == "module":
        _current_module[0] = name


def _skip_member(app, what, name, obj, skip, options):
    # NamedTuple fields are described by their class's ``Attributes:`` section already.
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    if what != "module":
        return None
    defined_in = getattr(obj, "__module__", None)
    current = _current_module[0]
    if not isinstance(defined_in, str) or defined_in == current:
        return None
    if _has_page(defined_in):
        return True  # documented in its own module's page
    if defined_in == f"{current}.{name}":
        return True  # a function hiding its same-named module: the stub page documents it
    canonical = f"{defined_in}.{getattr(obj, '__qualname__', name)}"
    if _documented_at.setdefault(canonical, f"{current}.{name}") != f"{current}.{name}":
        return True  # already documented under another public package
    return None


def _canonical(target: str, module: str | None) -> str | None:
    """Where ``target`` (e.g. ``snn.LIF``, or ``OpCounter`` inside ``snn.energy``) is defined."""
    import importlib

    candidates = [target]
    if module and not target.startswith("snn"):
        parts = module.split(".")
        candidates += [".".join([*parts[:i], target]) for i in range(len(parts), 0, -1)]
    for name in candidates:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            if getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
                return f"{obj.__module__}.{obj.__qualname__}"
            if hasattr(obj, "__spec__") and i == len(parts):
                return obj.__name__
            break
    return None


def _resolve_reexports(app, env, node, contnode):
    """Resolve references to re-exported names (``snn.LIF``) to where they are documented."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    canonical = _canonical(target, node.get("py:module"))
    canonical = _documented_at.get(canonical or "", canonical)
    domain = env.get_domain("py")
    if not canonical or canonical == target or not canonical.startswith("snn"):
        # data (no __module__) and short names: the one documented object with that name
        short = target.rsplit(".", 1)[-1]
        found = [n for n in domain.objects if n.startswith("snn.") and n.endswith("." + short)]
        if len(found) != 1 or found[0] == target:
            return None
        canonical = found[0]
    node["reftarget"] = canonical
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
    )


def setup(app):
    app.connect("autodoc-process-docstring", _track_module)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("missing-reference", _resolve_reexports)
