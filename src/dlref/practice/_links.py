"""Links: the address of a page of the site, under a base the user can set.

A report names the page that explains a mistake, as a site-relative link such as
``topics/optimizers.html#why-bias-correction-matters-at-step-1``; :func:`docs_url` puts the site's
address in front of it.
"""

from __future__ import annotations

import os
import pathlib

from dlref._checks import check_optional

DOCS_URL_VARIABLE = "DLREF_DOCS_URL"


def docs_url(link: str, base: str | None = None) -> str:
    """The address of ``link``, a page of the site (``"topics/optimizers.html#adam"``).

    The site's address is ``base`` when given, else the environment variable ``DLREF_DOCS_URL``,
    else, in a checkout of dlref, its local build ``file://.../docs/_build/html`` (``make html``
    writes it); with none of these the link stays relative to the site's root.

    Parameters
    ----------
    link : str
        Site-relative: a page and, where one fits, the section's anchor.
    base : str, optional
        The site's address, e.g. ``"http://localhost:8000"`` for ``make serve``; ``""`` keeps
        the link relative.

    Returns
    -------
    str
        ``base/link``.

    Examples
    --------
    >>> from dlref.practice import docs_url
    >>> docs_url("topics/optimizers.html#adam", base="http://localhost:8000/")
    'http://localhost:8000/topics/optimizers.html#adam'
    >>> docs_url("topics/optimizers.html#adam").endswith("/topics/optimizers.html#adam")
    True
    """
    check_optional("base", base, str)
    base = site_address(base)
    # base/link, with exactly one "/" between them
    return f"{base.rstrip('/')}/{link}" if base else link


def site_address(base: str | None = None) -> str:
    """``base``, else ``$DLREF_DOCS_URL``, else the local build; ``""``: links stay relative."""
    if base is not None:
        return base
    return os.environ.get(DOCS_URL_VARIABLE) or _local_site()


def _local_site() -> str:
    """``file://<checkout>/docs/_build/html`` when dlref runs from a checkout, else ``""``."""
    root = pathlib.Path(__file__).resolve().parents[3]  # <root>/src/dlref/practice/_links.py
    if not (root / "docs" / "conf.py").is_file():
        return ""
    return (root / "docs" / "_build" / "html").as_uri()
