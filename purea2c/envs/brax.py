"""Brax adapter: ``brax/<name>`` for the environments of brax's registry (``brax.envs``).

The adapter holds the RAW environment of ``brax.envs.get_environment(name, **kwargs)``,
never ``brax.envs.create``'s wrapped one: brax's ``EpisodeWrapper`` marks the time limit
with ``done`` and its ``AutoResetWrapper`` replaces the final observation with a cached
first one. The end signals map as follows:

- ``terminated`` = the raw env's ``done`` (a float 0/1 that brax's own envs set for a true
  end only, e.g. the pole of ``inverted_pendulum`` falling past 0.2 rad, an unhealthy
  ``hopper``; envs without a terminal state never set it);
- ``truncated`` = the adapter's step counter reached ``episode_length`` and the step did not
  terminate, which is brax's ``EpisodeWrapper``'s ``info["truncation"]``.

``obs`` is the raw step's observation, so at an end it is the final one. Brax's step is
deterministic: the step key is unused. Brax's reset is given a raw ``uint32`` key
(``jax.random.key_data``), the key type brax's own code paths pass (``jax.random.PRNGKey``
in ``PipelineEnv.observation_size`` and in brax.training).

Actions are a Box ``[-1, 1]`` of ``env.action_size`` (brax's envs rescale them to their
actuators' control ranges); observations are what the raw env returns, float32
``[env.observation_size]`` (a dict of arrays for envs built with dict observations).

Keyword arguments of `make`: ``episode_length`` (default 1000, the adapter's time limit and
``max_episode_steps``), ``backend`` (``'generalized'``, ``'positional'``, ``'spring'`` or
``'mjx'``; brax's default for the env when left out) and the env constructor's own keywords.
Brax's ``action_repeat`` is not supported.

``BraxEnv.render`` draws states with brax's MuJoCo renderer; without a display, MuJoCo
needs ``MUJOCO_GL=egl`` (or ``osmesa``) in the environment before it is first imported.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import brax.envs
import brax.fluid
import jax
import jax.numpy as jnp
import numpy as np

from purea2c.envs.core import EnvError, EnvStep, box_spec, spec_of

DEFAULT_EPISODE_LENGTH = 1000
_ADAPTER_KEYWORDS = ("episode_length",)


class BraxState(NamedTuple):
    """The adapter's state: the raw brax state and the episode's step counter."""

    env_state: Any  # brax.envs.State of the raw env (reward and done as float32 [])
    steps: jax.Array  # int32 [], steps taken in the current episode


def ids() -> list[str]:
    """brax's registered envs, less those that cannot run with the installed jax."""
    return sorted(set(_registered()) - set(_unusable()))


def _registered() -> list[str]:
    # brax 0.14.2 has no public listing of its registry; ``_envs`` is the dict that
    # ``get_environment`` reads and ``register_environment`` writes.
    return sorted(brax.envs._envs)  # pylint: disable=protected-access


def _unusable() -> dict[str, str]:
    """Registered envs whose step fails with the installed jax, and why. brax 0.14.2's
    fluid forces (``brax/fluid.py``, used by swimmer, the one registered env with
    viscosity) call ``jnp.clip(..., a_min=...)``, a keyword jax 0.10 no longer takes."""
    if "a_min" in inspect.signature(jnp.clip).parameters:
        return {}
    if "a_min=" not in inspect.getsource(brax.fluid):
        return {}
    return {"swimmer": "its fluid forces (brax/fluid.py) call jnp.clip(..., a_min=...), a "
                       f"keyword jax {jax.__version__} no longer takes"}


def make(name: str, episode_length: int = DEFAULT_EPISODE_LENGTH, backend: str | None = None,
         **env_kwargs: Any) -> "BraxEnv":
    """The adapter of brax's registered env ``name``; raises `EnvError` for an unknown name,
    a keyword the env does not take, an unknown backend or a bad ``episode_length``."""
    broken = _unusable()
    if name in broken:
        raise EnvError(f"brax/{name} cannot run with the installed jax: {broken[name]}")
    if name not in _registered():
        raise EnvError(f"unknown brax environment {name!r}; brax has {ids()}")
    if "action_repeat" in env_kwargs:
        raise EnvError(f"brax/{name}: action_repeat is not supported by purea2c's brax "
                       "adapter (each step is one raw brax step)")
    if (isinstance(episode_length, bool) or not isinstance(episode_length, (int, np.integer))
            or episode_length < 1):
        raise EnvError(f"brax/{name}: episode_length must be an int >= 1, got "
                       f"{episode_length!r}")
    env_class = brax.envs._envs[name]  # pylint: disable=protected-access
    accepted = _constructor_keywords(env_class)
    if accepted is not None:
        unknown = sorted(set(env_kwargs) - set(accepted))
        if unknown:
            raise EnvError(f"brax/{name} takes no keyword {unknown[0]!r}; it takes "
                           f"{sorted(set(accepted) | {'backend', *_ADAPTER_KEYWORDS})}")
    if backend is not None:
        env_kwargs = {**env_kwargs, "backend": backend}
    try:
        env = brax.envs.get_environment(name, **env_kwargs)
    except (TypeError, ValueError) as err:  # an unexpected keyword, an unknown backend
        raise EnvError(f"brax/{name} with {env_kwargs}: {err}") from None
    return BraxEnv(env, name, int(episode_length))


def _constructor_keywords(env_class: type) -> list[str] | None:
    """The keywords ``env_class(...)`` takes, following ``**kwargs`` up the class chain
    (brax's envs pass theirs to ``PipelineEnv.__init__``); None when that chain does not
    end in a constructor without ``**kwargs`` (then the constructor itself decides)."""
    names: list[str] = []
    for klass in env_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            return None
        params = list(inspect.signature(init).parameters.values())[1:]
        names += [p.name for p in params
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "sys"]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def _raw_key(key: jax.Array) -> jax.Array:
    """Brax's key type: raw ``uint32`` key data. A typed key of another implementation than
    jax's default stays typed (its raw data would be read as the default's); brax 0.14.2's
    envs only hand the key to ``jax.random``, which takes both."""
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if str(jax.random.key_impl(key)) != jax.config.jax_default_prng_impl:
        return key
    return jax.random.key_data(key)


def _normalized(state: Any) -> Any:
    """The brax state with reward and done as float32 arrays (brax's envs may return Python
    floats there), so the state is a fixed-type pytree across reset and step."""
    return state.replace(reward=jnp.asarray(state.reward, jnp.float32),
                         done=jnp.asarray(state.done, jnp.float32))


class BraxEnv:
    """A raw brax environment and a time limit behind the protocol of `purea2c.envs.core`."""

    suite = "brax"

    def __init__(self, env: Any, name: str, episode_length: int = DEFAULT_EPISODE_LENGTH):
        self.env, self.name = env, name
        self.episode_length = self.max_episode_steps = int(episode_length)
        self.backend = getattr(env, "backend", None)  # brax's test env "fast" has none
        with jax.ensure_compile_time_eval():
            key = jax.random.key_data(jax.random.key(0))
            obs = jax.eval_shape(lambda k: env.reset(k).obs, key)
        self.observation_spec = spec_of(obs)
        self.action_spec = box_spec(-1.0, 1.0, (int(env.action_size),))

    def reset(self, key: jax.Array) -> tuple[Any, BraxState]:
        """``(obs, state)`` of a fresh episode; ``key`` is a typed or raw JAX key."""
        state = _normalized(self.env.reset(_raw_key(key)))
        return state.obs, BraxState(state, jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: BraxState, action: jax.Array) -> EnvStep:
        """One raw brax step with ``action`` float32 ``[action_size]`` in ``[-1, 1]``;
        ``key`` is unused (brax's step is deterministic)."""
        del key
        raw = _normalized(self.env.step(state.env_state, action))
        steps = state.steps + 1
        terminated = raw.done.astype(bool)
        truncated = jnp.logical_and(steps >= self.episode_length, jnp.logical_not(terminated))
        return EnvStep(raw.obs, BraxState(raw, steps), raw.reward, terminated, truncated)

    def render(self, states: Any, height: int = 240, width: int = 320,
               camera: str | None = None) -> list[np.ndarray]:
        """RGB frames ``uint8 [height, width, 3]``, one per state, drawn by brax's MuJoCo
        renderer (``PipelineEnv.render``). ``states``: a sequence of `BraxState`, or one
        `BraxState` with a leading time axis (as a ``lax.scan`` collects them). Without a
        display MuJoCo needs ``MUJOCO_GL=egl`` (or ``osmesa``) set before it is imported."""
        if isinstance(states, BraxState):
            if states.steps.ndim == 0:
                states = [states]
            else:
                states = [jax.tree.map(lambda x, i=i: x[i], states)
                          for i in range(states.steps.shape[0])]
        trajectory = [s.env_state.pipeline_state for s in states]
        if not hasattr(self.env, "sys"):
            raise EnvError(f"{self!r} has no MuJoCo model to render")
        try:
            return [np.asarray(frame)
                    for frame in self.env.render(trajectory, height, width, camera)]
        except Exception as err:  # MuJoCo could not create an OpenGL context
            raise EnvError(f"{self!r}: MuJoCo's renderer failed ({type(err).__name__}: "
                           f"{err}); without a display set MUJOCO_GL=egl (or osmesa) before "
                           "importing brax") from err

    def draw(self, states: list, rewards: np.ndarray) -> tuple[list[np.ndarray], float]:
        """`render`'s frames of an episode's states, at the env's control rate
        (``1 / env.dt`` frames per second), for ``purea2c render``."""
        del rewards
        from purea2c.errors import RunError

        try:
            frames = self.render(states)
        except EnvError as err:
            raise RunError(str(err)) from err
        return frames, float(1.0 / float(getattr(self.env, "dt", 0.05)))

    def __repr__(self) -> str:
        return (f"BraxEnv({self.name}, backend={self.backend}, "
                f"episode_length={self.episode_length})")
