"""Sphinx configuration for dlref."""

import doctest
import os
import re
import subprocess

# One thread per process unless the environment says otherwise, set before torch is imported
# (dlref imports it): Read the Docs does not set it, and with torch's default threads on a
# shared builder the gallery ran four times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import dlref  # noqa: E402

project = "dlref"
author = "the dlref contributors"
copyright = "2026, the dlref contributors"
release = version = dlref.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",  # a [source] link on each API entry, to the highlighted module
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "sphinx_design",
]

# Cross-links to Python, NumPy and PyTorch need their inventories, which need the network. Read
# the Docs has it (and sets READTHEDOCS=True); a local build can ask with DLREF_INTERSPHINX=1,
# and DLREF_INTERSPHINX=0 turns them off on Read the Docs too (when a docs host is down: a host
# that cannot be reached is a warning, so it fails the build; see CONTRIBUTING.md).
_intersphinx = os.environ.get("DLREF_INTERSPHINX")
if _intersphinx == "1" or (os.environ.get("READTHEDOCS") == "True" and _intersphinx != "0"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
    }
    intersphinx_timeout = 15  # seconds per inventory: a hanging host fails fast, not never


# --- Getting dlref: the repository and an install line, from where the site is built -----------
# Read the Docs gives its clone URL; a local build asks git for the `origin` remote. Only an
# https URL (or an ssh one, rewritten to https) becomes a link; with none, the pages show the
# install line for a local checkout and no link: never a guessed address.
def _repository_url() -> str | None:
    url = os.environ.get("READTHEDOCS_GIT_CLONE_URL", "").strip()
    if not url:
        try:
            url = subprocess.run(
                ["git", "remote", "get-url", "origin"],
                cwd=os.path.dirname(os.path.abspath(__file__)),
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            url = ""
    ssh = re.fullmatch(r"(?:ssh://)?git@([^:/]+)[:/](.+)", url)
    if ssh:
        url = f"https://{ssh[1]}/{ssh[2]}"
    url = re.sub(r"^https://[^/@]*@", "https://", url)  # never publish a token or a user name
    if not re.fullmatch(r"https://[^/\s]+/\S+", url):
        return None  # a local path, file://, or nothing
    return url.removesuffix("/").removesuffix(".git")


REPOSITORY_URL = _repository_url()
if REPOSITORY_URL:
    INSTALL_LINE = f'pip install "dlref @ git+{REPOSITORY_URL}.git"'
else:
    INSTALL_LINE = "pip install -e .  # in a checkout of the dlref repository"
dlref_repository_url, dlref_install_line = REPOSITORY_URL, INSTALL_LINE  # for {dlref-install}

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "sg_execution_times.rst", "_static"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["dlref.css"]

# --- MyST ---------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# --- API reference ------------------------------------------------------------------------------
autosummary_generate = True
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_preprocess_types = True
napoleon_use_rtype = False
napoleon_type_aliases = {"Tensor": "torch.Tensor", "dtype": "torch.dtype"}

# Every reference must resolve, except names from torch/numpy when their inventories are absent
# (offline): those stay plain text instead of failing the build.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np)(\..*)?"),
    (r"py:.*", r"Tensor"),
    (r"py:.*", r"(collections|typing)\..*"),  # standard library, linked where intersphinx runs
    (r"py:class", r"callable"),  # numpy-style "f : callable"
]

# --- Doctests: the same flags as pytest (pyproject.toml) and Sybil (docs/conftest.py) ------------
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
doctest_global_setup = "import torch"
doctest_test_doctest_blocks = "default"

# --- Gallery ------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"/_",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("dlref",),
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "parallel": False,
    # The timing table page loads jQuery and DataTables from a CDN; each example page states its
    # own running time, and the site must work offline.
    "write_computation_times": False,
    # A downloaded notebook runs outside the repository: it starts by installing dlref.
    "first_notebook_cell": (
        f"%{INSTALL_LINE}"
        if REPOSITORY_URL
        else "# Install dlref first, in a checkout of its repository:\n# %pip install -e ."
    ),
}

# --- Math: MathJax from a local, pinned copy, so formulas render offline ------------------------
# `make site-assets` (a prerequisite of `make html`) installs the version pinned in
# package-lock.json with npm and copies the files the pages load to _static/mathjax, fonts
# included; MathJax 4 would otherwise fetch its fonts from a CDN even when its script is local.
MATHJAX_DIR = os.path.join(os.path.dirname(__file__), "_static", "mathjax")
# The pages hold TeX only (no MathML), so the TeX-to-CommonHTML component. `ui/lazy` typesets a
# formula when it comes near the screen: the self-test (hundreds of formulas) is readable at once
# instead of after every formula and its speech text are done. Speech for screen readers stays on.
mathjax_path = "mathjax/tex-chtml.js"
mathjax4_config = {"loader": {"paths": {"fonts": "[mathjax]/fonts"}, "load": ["ui/lazy"]}}


def _require_local_mathjax(app):
    if app.builder.format == "html" and not os.path.isfile(
        os.path.join(MATHJAX_DIR, "tex-chtml.js")
    ):
        raise RuntimeError(
            "docs/_static/mathjax is missing: run `make site-assets` (needs npm) or `make html`"
        )


def _exists(dotted: str) -> bool:
    """Whether ``dlref.module.Name.attr`` names something dlref still has."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _remove_stale_api_stubs(app):
    """Delete autosummary pages of names dlref no longer has (renamed or removed).

    autosummary writes ``api/generated/dlref.<module>.<name>.rst`` but never deletes one, so an
    incremental build after a rename would fail on the old page.
    """
    folder = os.path.join(app.srcdir, "api", "generated")
    for filename in os.listdir(folder) if os.path.isdir(folder) else []:
        if filename.endswith(".rst") and not _exists(filename.removesuffix(".rst")):
            os.remove(os.path.join(folder, filename))


def _install_directive():
    from docutils import nodes
    from docutils.parsers.rst import Directive

    class DlrefInstall(Directive):
        """``{dlref-install}``: the repository link, where known, and the install line."""

        def run(self):
            config = self.state.document.settings.env.config
            url, line = config.dlref_repository_url, config.dlref_install_line
            para = nodes.paragraph()
            if url:
                para += nodes.Text("The repository: ")
                para += nodes.reference(url, url, refuri=url)
                para += nodes.Text(". Install dlref (it needs only torch and numpy) with:")
            else:
                para += nodes.Text(
                    "Install dlref (it needs only torch and numpy) from a checkout of its "
                    "repository:"
                )
            return [para, nodes.literal_block(line, line, language="sh")]

    return DlrefInstall


# --- Search: the spellings readers type ----------------------------------------------------------
# Sphinx's search matches whole words of the page text, so "batchnorm" would not find "batch
# norm". Each (page, section id) gets index entries under these spellings: the search lists them
# (linked to the section) and so does the general index.
SEARCH_SYNONYMS = {
    ("topics/normalization", "batch-norm-training-and-evaluation-differ"): [
        "batchnorm",
        "batch normalization",
        "BatchNorm1d",
        "BatchNorm2d",
    ],
    ("topics/normalization", "rmsnorm-is-layernorm-without-the-centring-and-the-bias"): [
        "layernorm",
        "layer normalization",
        "rmsnorm",
    ],
    ("topics/cross-entropy", "the-log-sum-exp-trick"): ["logsumexp", "log-sum-exp", "LSE"],
}


def _add_search_synonyms(app, doctree):
    from docutils import nodes
    from sphinx import addnodes
    from sphinx.util import logging

    docname = app.env.docname
    for (page, section_id), words in SEARCH_SYNONYMS.items():
        if page != docname:
            continue
        section = next((s for s in doctree.findall(nodes.section) if section_id in s["ids"]), None)
        if section is None:
            logging.getLogger(__name__).warning(
                "SEARCH_SYNONYMS in conf.py: %s has no section #%s", page, section_id
            )
            continue
        entries = [("single", word, section_id, "main", None) for word in words]
        section.insert(1, addnodes.index(entries=entries, inline=False))
        app.env.domains.index_domain.entries.setdefault(docname, []).extend(entries)


def _reread_synonym_pages(app, env, added, changed, removed):
    """Read the pages with synonyms again on every build: an incremental build keeps the search
    terms of unchanged pages but not their index entries, so the synonyms would vanish."""
    return [page for page, _ in SEARCH_SYNONYMS if page in env.found_docs]


def _no_stub_source_link(app, pagename, templatename, context, doctree):
    """An API page's "Show Source" would open its 10-line stub; its [source] link opens the code."""
    if pagename.startswith("api/generated/") and "secondary_sidebar_items" in context:
        items = context["secondary_sidebar_items"]
        context["secondary_sidebar_items"] = [t for t in items if "sourcelink" not in t]


def setup(app):
    app.connect("html-page-context", _no_stub_source_link, priority=600)  # after the theme's
    app.connect("doctree-read", _add_search_synonyms)
    app.connect("env-get-outdated", _reread_synonym_pages)
    # config values, so that a build with another repository rewrites the pages that show it
    app.add_config_value("dlref_repository_url", None, "env")
    app.add_config_value("dlref_install_line", "", "env")
    app.add_directive("dlref-install", _install_directive())
    app.connect("builder-inited", _require_local_mathjax)
    app.connect("builder-inited", _remove_stale_api_stubs, priority=100)  # before autosummary


# --- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "dlref"
# Pages without a section of their own (the top-level pages) have nothing for the primary
# sidebar's "Section Navigation": no sidebar there, the text gets the width.
_TOP_LEVEL = ["index", "self-test", "practice", "performance"]
html_sidebars = {page: [] for page in _TOP_LEVEL}
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "icon_links": (
        [
            {
                "name": "Repository",
                "url": REPOSITORY_URL,
                "icon": (
                    "fa-brands fa-github"
                    if REPOSITORY_URL.startswith("https://github.com/")
                    else "fa-solid fa-code-branch"
                ),
            }
        ]
        if REPOSITORY_URL
        else []
    ),
}
html_context = {"default_mode": "auto"}  # light/dark from the reader's system
html_show_sourcelink = True
html_favicon = "_static/favicon.svg"
copybutton_prompt_text = r">>> |\.\.\. "
copybutton_prompt_is_regexp = True
