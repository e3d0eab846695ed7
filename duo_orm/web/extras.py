"""Name the extra to install when an adapter is imported without its framework.

The database drivers already answer a missing package with the ``pip install``
that fixes it; without this, ``import duo_orm_litestar`` would stop at a bare
``No module named 'litestar'`` that does not say duo-orm ships it as an extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def framework_extra(extra: str, *frameworks: str) -> Iterator[None]:
    """Re-raise a missing framework imported in the block as one naming ``duo-orm[extra]``.

    ``frameworks`` are the top-level packages the extra installs (``extra`` itself
    when none are given). Any other missing module is left as it was: it is not
    something the extra would bring.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in (frameworks or (extra,)):
            raise
        raise ModuleNotFoundError(
            f"duo_orm_{extra} needs {missing}, which is not installed: "
            f'pip install "duo-orm[{extra}]"',
            name=missing,
        ) from None
