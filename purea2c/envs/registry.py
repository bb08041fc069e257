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

from purea2c.envs.core import (ACTION_MASK, ActionSpec, ArraySpec, EnvError, EnvStep,
                               spec_of)


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


def _known_suite(suite: Any) -> str:
    if not isinstance(suite, str) or suite not in SUITES:
        raise EnvError(f"unknown suite {suite!r}; suites: {sorted(SUITES)}")
    return suite


def ids(suite: str) -> list[str]:
    """The environment ids ``suite`` registers (importing it)."""
    return [f"{suite}/{name}" for name in adapter_module(_known_suite(suite)).ids()]


def describe(suites: list[str] | None = None, with_ids: bool = False) -> str:
    """A table of the suites: installed version (or the extra that installs it), how many
    environment ids each registers, and an example id; with ``with_ids``, every id.
    ``suites``: names of suites (one name alone is one suite; default: all)."""
    if isinstance(suites, str):
        suites = [suites]
    lines = [f"{'suite':10} {'installed':12} {'ids':>5}  example / install"]
    listed: list[str] = []
    for suite in suites or list(SUITES):
        info, version = SUITES[_known_suite(suite)], installed(suite)
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


# What an environment object has (`purea2c.envs.core`).
PROTOCOL = ("observation_spec", "action_spec", "max_episode_steps", "reset", "step")


def _check(env: Any) -> None:
    label = repr(env)
    missing = [name for name in PROTOCOL if not hasattr(env, name)]
    if missing:
        has = "none of" if len(missing) == len(PROTOCOL) else "no"
        raise EnvError(f"{label} does not follow the protocol of purea2c.envs: it has {has} "
                       f"{', '.join(missing)}" + (f" (an env has {', '.join(PROTOCOL)})"
                                                  if has == "no" else ""))
    for name in ("reset", "step"):
        if not callable(getattr(env, name)):
            raise EnvError(f"{label}: {name} must be a method, got "
                           f"{getattr(env, name)!r}")
    steps = env.max_episode_steps
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) \
            or steps < 1:
        raise EnvError(f"{label}: max_episode_steps must be an int >= 1, got {steps!r}")
    spec = env.action_spec
    _check_action_spec(label, spec)
    _check_observation_spec(label, env.observation_spec, spec)
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
        raise EnvError(f"{label}: reset or step failed: {type(err).__name__}: "
                       f"{_first_line(err)}") from err
    if not isinstance(out, EnvStep):
        raise EnvError(f"{label}: step must return purea2c.envs.EnvStep, got "
                       f"{type(out).__name__}")
    _check_obs(label, "reset", obs, env.observation_spec)
    _check_obs(label, "step", out.obs, env.observation_spec)
    reward = out.reward
    if not _is_array(reward) or reward.shape != () \
            or not np.issubdtype(reward.dtype, np.floating):
        raise EnvError(f"{label}: step's reward must be a float scalar, got "
                       f"{_describe(reward)}")
    for flag in ("terminated", "truncated"):
        value = getattr(out, flag)
        if not _is_array(value) or value.shape != () or value.dtype != np.bool_:
            raise EnvError(f"{label}: step's {flag} must be a bool scalar, got "
                           f"{_describe(value)}")
    _check_state(label, state, out.state)


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _describe(value: Any) -> str:
    """``float32[2]`` for an array, else the value's type."""
    if _is_array(value):
        return f"{np.dtype(value.dtype)}{list(value.shape)}"
    return f"{value!r} ({type(value).__name__})"


def _check_action_spec(label: str, spec: Any) -> None:
    """An `ActionSpec`: ``discrete`` a bool, ``num_actions`` an int >= 1; a Box has bounds
    of shape ``(num_actions,)``, not NaN, ``low <= high``."""
    if not isinstance(spec, ActionSpec):
        raise EnvError(f"{label}: action_spec must be a purea2c.envs.ActionSpec (discrete, "
                       f"num_actions, low, high), got {spec!r}")
    if not isinstance(spec.discrete, (bool, np.bool_)):
        raise EnvError(f"{label}: action_spec.discrete must be a bool, got {spec.discrete!r}")
    n = spec.num_actions
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise EnvError(f"{label}: action_spec.num_actions must be an int >= 1, got {n!r}")
    if spec.discrete:
        return
    for name in ("low", "high"):
        bound = getattr(spec, name)
        try:
            array = None if bound is None else np.asarray(bound, np.float64)
        except (TypeError, ValueError):
            array = None
        if array is None or array.shape != (n,):
            raise EnvError(f"{label}: a Box action_spec needs {name} bounds of shape ({n},) "
                           f"(purea2c.envs.box_spec builds them), got {bound!r}")
        if np.isnan(array).any():
            raise EnvError(f"{label}: action_spec.{name} has NaN: {bound!r}")
    if (np.asarray(spec.low, np.float64) > np.asarray(spec.high, np.float64)).any():
        raise EnvError(f"{label}: action_spec.low must be <= high, got low {spec.low!r} and "
                       f"high {spec.high!r}")


def _check_observation_spec(label: str, spec: Any, action_spec: ActionSpec) -> None:
    """Every leaf an `ArraySpec` of int dimensions >= 0; its bounds (when given) broadcast
    to its shape, not NaN, ``low <= high``; an action mask is bool ``[num_actions]``."""
    leaves = jax.tree_util.tree_leaves_with_path(spec)
    for path, leaf in leaves:
        where = f"observation_spec{jax.tree_util.keystr(path)}"
        if not isinstance(leaf, ArraySpec):
            raise EnvError(f"{label}: {where} must be a purea2c.envs.ArraySpec (or a pytree "
                           f"of them), got {leaf!r}")
        shape = leaf.shape
        if not isinstance(shape, tuple) or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_))
                and d >= 0 for d in shape):
            raise EnvError(f"{label}: {where}.shape must be a tuple of ints >= 0, got "
                           f"{shape!r}")
        try:
            dtype = np.dtype(leaf.dtype)
        except TypeError:
            raise EnvError(f"{label}: {where}.dtype {leaf.dtype!r} is not a dtype") from None
        if not _real_dtype(dtype):
            raise EnvError(f"{label}: {where}.dtype must be a real number or bool dtype, got "
                           f"{dtype}")
        bounds = {}
        for name in ("low", "high"):
            bound = getattr(leaf, name)
            if bound is None:
                continue
            try:
                bounds[name] = np.broadcast_to(np.asarray(bound, np.float64), shape)
            except (TypeError, ValueError):
                raise EnvError(f"{label}: {where}.{name} must be numbers of shape {shape}, "
                               f"got {bound!r}") from None
            if np.isnan(bounds[name]).any():
                raise EnvError(f"{label}: {where}.{name} has NaN (use -inf or inf for an "
                               f"unbounded dimension): {bound!r}")
        if len(bounds) == 2 and (bounds["low"] > bounds["high"]).any():
            raise EnvError(f"{label}: {where}.low must be <= high, got low {leaf.low!r} and "
                           f"high {leaf.high!r}")
    if isinstance(spec, dict) and ACTION_MASK in spec:
        mask = spec[ACTION_MASK]
        if np.dtype(mask.dtype) != np.bool_ or tuple(mask.shape) != (action_spec.num_actions,):
            raise EnvError(f"{label}: observation_spec['{ACTION_MASK}'] must be bool "
                           f"[{action_spec.num_actions}] (one flag per action), got "
                           f"{np.dtype(mask.dtype)}{list(mask.shape)}")


def _real_dtype(dtype: np.dtype) -> bool:
    return dtype == np.bool_ or np.issubdtype(dtype, np.integer) \
        or np.issubdtype(dtype, np.floating)


def _check_state(label: str, reset_state: Any, step_state: Any) -> None:
    """step's state has the structure, shapes and dtypes of reset's (the training loop
    carries it and swaps in reset states where episodes end)."""
    if jax.tree.structure(reset_state) != jax.tree.structure(step_state):
        raise EnvError(f"{label}: step's state has the structure "
                       f"{jax.tree.structure(step_state)}; reset's has "
                       f"{jax.tree.structure(reset_state)} (they must match)")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(reset_state),
                            jax.tree.leaves(step_state)):
        if tuple(a.shape) != tuple(b.shape) or np.dtype(a.dtype) != np.dtype(b.dtype):
            raise EnvError(f"{label}: step's state{jax.tree_util.keystr(path)} is "
                           f"{_describe(b)}; reset's is {_describe(a)} (they must match)")


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
        if not _real_dtype(np.dtype(g.dtype)):
            raise EnvError(f"{label}: {where}'s observation has dtype {g.dtype}, not a real "
                           "number or bool")
