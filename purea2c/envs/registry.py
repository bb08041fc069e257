"""Environment ids ``"suite/name"`` -> adapters, and the checks an env passes before use.

Each suite beyond gymnax is an optional extra of the package; its adapter module (the only
place the suite is imported) is loaded on first use, and a missing suite raises one
`EnvError` that names the extra to install.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import weakref
from typing import Any, NamedTuple

import jax
import numpy as np

from purea2c.envs.core import ArraySpec, EnvError, EnvStep, spec_of


class Suite(NamedTuple):
    module: str  # the adapter module
    distribution: str  # the suite's package on the registry
    extra: str  # purea2c's optional extra that installs it
    example: str  # an id to show in messages


SUITES: dict[str, Suite] = {
    "gymnax": Suite("purea2c.envs.gymnax", "gymnax", "", "gymnax/CartPole-v1"),
    "brax": Suite("purea2c.envs.brax", "brax", "brax", "brax/inverted_pendulum"),
    "jumanji": Suite("purea2c.envs.jumanji", "jumanji", "jumanji", "jumanji/Snake-v1"),
    "craftax": Suite("purea2c.envs.craftax", "craftax", "craftax",
                     "craftax/Craftax-Classic-Symbolic-v1"),
    "navix": Suite("purea2c.envs.navix", "navix", "navix", "navix/Navix-Empty-5x5-v0"),
    "xminigrid": Suite("purea2c.envs.xminigrid", "xminigrid", "xminigrid",
                       "xminigrid/MiniGrid-Empty-5x5"),
}


# Environments gymnax 1.0.1 draws (gymnax.visualize.Visualizer; the gymnax adapter's
# ``draw``). The classic-control ones are drawn by gymnasium's renderer (needs pygame: pip
# install "purea2c[render]"). Listed here so that naming them imports no suite.
GYMNAX_DRAWN_BY_GYMNASIUM = ("Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0",
                             "MountainCarContinuous-v0")
GYMNAX_DRAWN_BY_MATPLOTLIB = ("Catch-bsuite", "Asterix-MinAtar", "Breakout-MinAtar",
                              "Freeway-MinAtar", "Seaquest-MinAtar", "SpaceInvaders-MinAtar",
                              "Pong-misc", "PointRobot-misc", "MetaMaze-misc", "FourRooms-misc")


def parse_id(env_id: str) -> tuple[str, str]:
    """``"suite/name"`` -> ``(suite, name)``; a bare name is gymnax's."""
    if not isinstance(env_id, str) or not env_id:
        raise EnvError(f"environment id {env_id!r} is not a non-empty string")
    suite, sep, name = env_id.partition("/")
    if not sep:
        return "gymnax", env_id
    if suite not in SUITES:
        raise EnvError(f"unknown suite {suite!r} in {env_id!r}; suites: {sorted(SUITES)} "
                       f"(ids are 'suite/name', e.g. {SUITES['brax'].example!r})")
    if not name:
        raise EnvError(f"environment id {env_id!r} names no environment of {suite}")
    return suite, name


def adapter_module(suite: str) -> Any:
    """The adapter module of ``suite``, importing the suite; `EnvError` naming the extra
    when it is not installed."""
    info = SUITES[suite]
    try:
        return importlib.import_module(info.module)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == info.distribution:
            raise EnvError(f"{suite} is not installed: pip install \"purea2c[{info.extra}]\" "
                           f"(or \"purea2c[all]\")") from None
        raise


def installed(suite: str) -> str | None:
    """The installed version of ``suite``'s package, or None."""
    try:
        return importlib.metadata.version(SUITES[suite].distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def ids(suite: str) -> list[str]:
    """The environment ids ``suite`` registers (importing it)."""
    return [f"{suite}/{name}" for name in adapter_module(suite).ids()]


def describe(suites: list[str] | None = None, with_ids: bool = False) -> str:
    """A table of the suites: installed version (or the extra that installs it), how many
    environment ids each registers, and an example id; with ``with_ids``, every id."""
    lines = [f"{'suite':10} {'installed':12} {'ids':>5}  example / install"]
    listed: list[str] = []
    for suite in suites or list(SUITES):
        if suite not in SUITES:
            raise EnvError(f"unknown suite {suite!r}; suites: {sorted(SUITES)}")
        info, version = SUITES[suite], installed(suite)
        if version is None:
            lines.append(f"{suite:10} {'no':12} {'':>5}  pip install \"purea2c[{info.extra}]\"")
            continue
        try:
            suite_ids = ids(suite)
        except EnvError as err:  # installed, but its import failed
            lines.append(f"{suite:10} {version:12} {'':>5}  {err}")
            continue
        lines.append(f"{suite:10} {version:12} {len(suite_ids):>5}  {info.example}")
        listed += suite_ids
    if with_ids:
        lines += ["", *listed]
    return "\n".join(lines)


def make(env: Any, **kwargs: Any) -> Any:
    """The adapter of ``env``: an id ``"suite/name"`` (a bare name is gymnax's), an object
    that follows the protocol, or an object with gymnax's 1.x API (wrapped). ``kwargs`` go
    to the suite (e.g. ``episode_length=1000`` for Brax). Raises `EnvError` for an unknown
    suite or id, a keyword the env does not take, or an object that breaks the protocol."""
    if isinstance(env, str):
        return _make_by_id(*parse_id(env), tuple(sorted(kwargs.items())))
    if kwargs:
        raise EnvError(f"keywords {sorted(kwargs)} were given with an env object; they go "
                       "with an id ('suite/name') only")
    from purea2c.envs import gymnax as gymnax_adapter

    if all(hasattr(env, a) for a in ("observation_spec", "action_spec", "reset", "step",
                                     "max_episode_steps")):
        return check(env)
    if gymnax_adapter.is_gymnax_object(env):
        return gymnax_adapter.wrap(env)
    raise EnvError(f"{env!r} is neither an environment id nor an object with the protocol "
                   "of purea2c.envs (observation_spec, action_spec, max_episode_steps, "
                   "reset, step) or with the gymnax 1.x API")


@functools.lru_cache(maxsize=64)
def _make_by_id(suite: str, name: str, kwargs: tuple[tuple[str, Any], ...]) -> Any:
    module = adapter_module(suite)
    try:
        return check(module.make(name, **dict(kwargs)))
    except TypeError as err:  # a keyword the suite's constructor does not take
        raise EnvError(f"{suite}/{name}: {err}") from None


_CHECKED: "weakref.WeakSet[Any]" = weakref.WeakSet()


def check(env: Any) -> Any:
    """``env`` itself once its reset and step agree with its specs (checked abstractly, no
    compilation): observations of the declared shapes, a scalar reward, boolean flags.
    Raises `EnvError` naming what breaks the protocol."""
    try:
        if env in _CHECKED:
            return env
    except TypeError:  # not weak-referenceable or not hashable: check every time
        pass
    _check(env)
    try:
        _CHECKED.add(env)
    except TypeError:
        pass
    return env


def _check(env: Any) -> None:
    label = repr(env)
    spec = env.action_spec
    if spec.discrete:
        action = jax.ShapeDtypeStruct((), np.int32)
    else:
        action = jax.ShapeDtypeStruct((spec.num_actions,), np.float32)
    key = jax.eval_shape(lambda: jax.random.key(0))
    try:
        obs, state = jax.eval_shape(env.reset, key)
        out = jax.eval_shape(env.step, key, state, action)
    except EnvError:
        raise
    except Exception as err:  # the env's own code failed on abstract inputs
        raise EnvError(f"{label}: reset or step failed: {type(err).__name__}: {err}") from err
    if not isinstance(out, EnvStep):
        raise EnvError(f"{label}: step must return purea2c.envs.EnvStep, got "
                       f"{type(out).__name__}")
    _check_obs(label, "reset", obs, env.observation_spec)
    _check_obs(label, "step", out.obs, env.observation_spec)
    if out.reward.shape != () or not np.issubdtype(out.reward.dtype, np.floating):
        raise EnvError(f"{label}: step's reward must be a float scalar, got "
                       f"{out.reward.dtype}{list(out.reward.shape)}")
    for flag in ("terminated", "truncated"):
        value = getattr(out, flag)
        if value.shape != () or value.dtype != np.bool_:
            raise EnvError(f"{label}: step's {flag} must be a bool scalar, got "
                           f"{value.dtype}{list(value.shape)}")
    if not isinstance(env.max_episode_steps, (int, np.integer)) or env.max_episode_steps < 1:
        raise EnvError(f"{label}: max_episode_steps must be an int >= 1, got "
                       f"{env.max_episode_steps!r}")


def _check_obs(label: str, where: str, obs: Any, spec: Any) -> None:
    got = spec_of(obs)
    if jax.tree.structure(got) != jax.tree.structure(spec):
        raise EnvError(f"{label}: {where}'s observation has the structure "
                       f"{jax.tree.structure(got)}; observation_spec says "
                       f"{jax.tree.structure(spec)}")
    for g, s in zip(jax.tree.leaves(got), jax.tree.leaves(spec)):
        if not isinstance(s, ArraySpec) or tuple(g.shape) != tuple(s.shape):
            raise EnvError(f"{label}: {where}'s observation has shape {g.shape}; "
                           f"observation_spec says {s}")
        if not (np.issubdtype(g.dtype, np.number) or g.dtype == np.bool_):
            raise EnvError(f"{label}: {where}'s observation has dtype {g.dtype}, not numeric")
