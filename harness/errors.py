"""Errors for people: one line, whatever raised them."""

from __future__ import annotations

import psycopg


def describe_error(exc: BaseException) -> str:
    """One line for people: SQLSTATE, message and hint of a server error; libpq's own line otherwise."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        line = f"{exc.sqlstate}: {exc.diag.message_primary}" if exc.sqlstate else exc.diag.message_primary
        if exc.diag.message_hint:
            line += f" (hint: {exc.diag.message_hint})"
        return line
    lines = [part.strip().removeprefix("connection is bad: ") for part in str(exc).splitlines() if part.strip()]
    # libpq writes one "... failed: why" line per address tried, then perhaps a hint of its own.
    failed = [line for line in lines if "failed:" in line]
    if not failed:
        return lines[-1] if lines else type(exc).__name__
    extra = [line for line in lines[lines.index(failed[-1]) + 1:]]
    return failed[-1] + (f" ({' '.join(extra)})" if extra else "")
