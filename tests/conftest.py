"""Test-wide settings: implicit rank promotion is an error, as in rlax's tests. The header of
every run lists the versions it runs on (pyproject's requirements, as installed)."""

import jax

from helpers import installed_versions, pyproject_requirements

jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_report_header(config):
    versions = installed_versions(pyproject_requirements())
    return "versions: " + ", ".join(f"{name} {version}" for name, version in versions.items())
