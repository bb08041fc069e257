"""The error the command line reports as one line (``purea2c: error: ...``), no traceback."""

from __future__ import annotations


class RunError(Exception):
    """A user-facing problem with a run: its directory or files, its saved state, an output
    it cannot write or an environment it cannot draw. ``purea2c`` prints the message as one
    line and exits with status 1."""
