"""Test-wide settings: implicit rank promotion is an error, as in rlax's tests; the command
line's compilation cache is a fresh folder. The header of every run lists the versions it
runs on (pyproject's requirements, as installed)."""

import os
import tempfile

import jax

from helpers import installed_versions, pyproject_requirements

jax.config.update("jax_numpy_rank_promotion", "raise")
# The command line's persistent compilation cache: one fresh folder per test session (shared
# by the session's subprocesses), never the user's ~/.cache.
os.environ.setdefault("PUREA2C_CACHE_DIR", tempfile.mkdtemp(prefix="purea2c-test-cache-"))


def pytest_report_header(config):
    versions = installed_versions(pyproject_requirements())
    return "versions: " + ", ".join(f"{name} {version}" for name, version in versions.items())
