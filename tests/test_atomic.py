"""atomic.py: a file is replaced whole or not at all, and no temporary file is left."""

import os

import pytest

from purea2c import atomic


def test_writes_text_bytes_and_through_a_function(tmp_path):
    path = tmp_path / "a.json"
    assert atomic.write_atomically(path, '{"é": 1}\n') == path
    assert path.read_bytes() == '{"é": 1}\n'.encode()
    atomic.write_atomically(path, b"\x00\x01" * 100_000)
    assert path.read_bytes() == b"\x00\x01" * 100_000
    atomic.write_atomically(str(path), lambda f: (f.write(b"part 1, "), f.write(b"part 2")))
    assert path.read_bytes() == b"part 1, part 2"
    assert os.listdir(tmp_path) == ["a.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old and complete")

    def fails_halfway(f):
        f.write(b"new but cut")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_atomically(path, fails_halfway)
    assert path.read_text() == "old and complete"
    assert os.listdir(tmp_path) == ["run.json"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "meta.json"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("no rename")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="no rename"):
        atomic.write_atomically(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["meta.json"]


def test_a_new_file_that_fails_is_not_created(tmp_path):
    def fails(f):
        raise ValueError("bad content")

    with pytest.raises(ValueError):
        atomic.write_atomically(tmp_path / "new.png", fails)
    assert os.listdir(tmp_path) == []
