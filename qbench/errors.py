"""Errors that carry a one-line reason for the user (the CLI prints them without a traceback)."""

from __future__ import annotations

import difflib


class QbenchError(Exception):
    """Base class: the message is a complete, one-line explanation of what went wrong."""


class DatasetNotFoundError(QbenchError):
    """A dataset's files are not where they were looked for."""

    def __init__(self, name: str, searched: str, published: str, hint: str = "") -> None:
        extra = f" ({hint})" if hint else ""
        super().__init__(
            f"dataset {name!r} not found at {searched}{extra}; it is published at {published}"
        )
        self.name, self.searched, self.published = name, searched, published


class DatasetFormatError(QbenchError):
    """A dataset's files exist but do not follow the official release layout."""

    def __init__(self, name: str, path: str, reason: str) -> None:
        super().__init__(f"dataset {name!r} is malformed: {path}: {reason}")
        self.name, self.path, self.reason = name, path, reason


class ImageReadError(QbenchError):
    """One image could not be decoded or has an unusable mode or size."""


class UnknownNameError(QbenchError):
    """A name was looked up in a registry that does not hold it."""

    def __init__(self, kind: str, name: str, known: list[str],
                 candidates: list[str] | None = None) -> None:
        close = difflib.get_close_matches(name, candidates or known, n=3, cutoff=0.6)
        hint = f" -- did you mean {' or '.join(map(repr, close))}?" if close else ""
        shown = ", ".join(sorted(known)[:30]) + (", ..." if len(known) > 30 else "")
        super().__init__(f"unknown {kind} {name!r}{hint}; known: {shown}")
        self.kind, self.name, self.known = kind, name, list(known)


class InvalidInputError(QbenchError, ValueError, TypeError):
    """An argument or tensor a function cannot use as given (type, dtype, value range, device,
    an empty batch): refused with one line instead of being coerced (also a ValueError and a
    TypeError, the types such checks raised before)."""
