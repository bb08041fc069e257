"""Writing a file atomically: readers see the old file or the complete new one, never a part.

    write_atomically("run/config.json", text)                     # str (UTF-8) or bytes
    write_atomically("run/curve.png", lambda f: fig.savefig(f, format="png"))

The content goes to a temporary file in the same folder (so that the rename stays on one
filesystem), which is flushed and fsynced, then renamed over ``path`` with ``os.replace``;
the folder is fsynced last, so the rename itself survives a crash. A write that fails (or is
interrupted by an exception) removes its temporary file and leaves the old file as it was.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from typing import BinaryIO, Callable, Union

Content = Union[str, bytes, Callable[[BinaryIO], object]]


def write_atomically(path: str | os.PathLike, content: Content) -> pathlib.Path:
    """Replaces ``path`` with ``content`` atomically and returns ``path``. ``content``: a
    ``str`` (written as UTF-8), ``bytes``, or a function that writes to the binary file it
    is given (``fig.savefig``, ``Image.save``: name the format, the temporary file's name
    has no useful extension)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            if isinstance(content, str):
                f.write(content.encode())
            elif isinstance(content, (bytes, bytearray, memoryview)):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flushes a folder's entries (a rename, a new or removed file) to disk; nothing where
    the platform cannot open a folder."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
