"""Run the ```{doctest}``` fences of the MyST pages under pytest, as Sphinx's doctest builder does.

All blocks of a page share one namespace, as in Sphinx. The option flags are the ones of
pyproject.toml (pytest) and docs/conf.py (Sphinx).
"""

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.parsers.myst import DocTestDirectiveParser

collect_ignore = ["conf.py"]
collect_ignore_glob = [
    "_build/*",
    "_static/*",
    "auto_examples/*",
    "gen_modules/*",
    "api/generated/*",
]


def _setup(namespace):
    exec("import torch", namespace)  # as doctest_global_setup in docs/conf.py


pytest_collect_file = Sybil(
    parsers=[DocTestDirectiveParser(optionflags=ELLIPSIS | NORMALIZE_WHITESPACE)],
    patterns=["*.md"],
    setup=_setup,
).pytest()
