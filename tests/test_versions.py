"""The installed Python and packages satisfy pyproject.toml's ranges (dependencies and the
``test`` extra); the versions the run used are recorded (``record_property``, so in a JUnit
XML report) and listed in the header of every run (tests/conftest.py)."""

import platform
import tomllib

from packaging.specifiers import SpecifierSet

from helpers import ROOT, installed_versions, pyproject_requirements


def test_installed_versions_satisfy_pyproject(record_property):
    requirements = pyproject_requirements()
    versions = installed_versions(requirements)
    for name, version in versions.items():
        record_property(name, version)
    ran_on = ", ".join(f"{name} {version}" for name, version in versions.items())
    python_range = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"]
    wrong = [] if platform.python_version() in SpecifierSet(python_range) else [
        f"python {platform.python_version()} not in {python_range}"]
    for req in requirements:
        version = versions[req.name]
        if version is None:
            wrong.append(f"{req.name} is not installed")
        elif not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{req.name} {version} not in {req.specifier}")
    assert not wrong, f"{'; '.join(wrong)} (ran on {ran_on})"


def test_every_jax_library_has_an_upper_bound():
    # A new minor release of the JAX stack can break the program; the ranges stop at the
    # next one until it has been tested.
    stack = {"jax", "flax", "optax", "chex", "gymnax", "orbax-checkpoint"}
    unbounded = [str(req) for req in pyproject_requirements(extras=())
                 if req.name in stack and not any(s.operator in ("<", "<=", "==", "~=")
                                                  for s in req.specifier)]
    assert {req.name for req in pyproject_requirements(extras=())} >= stack
    assert not unbounded, unbounded
