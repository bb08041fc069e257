"""Bad input for the environment suites and what came with them: environment ids of every
suite (`purea2c.envs.parse_id`, `make`, `ids`, `describe`), each suite's keywords,
``Config(env=..., env_kwargs=...)`` and `Config.preset`, objects that break the protocol of
`purea2c.envs` (given to `envs.check` or as ``Config(env=<object>)``),
``Config.max_skipped_share``, `purea2c.divergence`, `checkpoint.prune`, and the command
line's ``purea2c envs`` and ``purea2c train --env ... --env-kwargs ...``.

Every case is one error of purea2c's own (`envs.EnvError`, a ValueError, or a TypeError
naming the bad keyword), raised by purea2c's validation rather than from inside JAX, with a
one-line message that names the bad value and what is allowed; the protocol checks build no
program (they trace abstractly); the command line exits 2 with one line and compiles
nothing. (Suite adapters' own behaviour is in tests/test_env_*.py; Config's fields other
than these in test_validation.py; other command lines in test_cli.py.)"""

from __future__ import annotations

import pathlib
import re
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purea2c
from purea2c import checkpoint, cli, envs, run_loop
from purea2c.config import Config

PACKAGE = pathlib.Path(purea2c.__file__).parent

_compiles: list[str] = []


def _on_event(event: str, duration: float, **kwargs) -> None:
    if event.endswith("backend_compile_duration"):
        _compiles.append(event)


jax.monitoring.register_event_duration_secs_listener(_on_event)


def _raises(call, error, *fragments):
    """Calls ``call()``; it must raise ``error`` from purea2c's own code (the innermost frame
    is in the package, not in JAX or a suite), quickly, with a one-line message holding
    every fragment. Returns the message."""
    start = time.perf_counter()
    with pytest.raises(error) as info:
        call()
    assert time.perf_counter() - start < 20
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    where = pathlib.Path(traceback.extract_tb(info.tb)[-1].filename)
    assert PACKAGE in where.parents, (where, message)
    return message


# ------------------------------------------------------------------------------------------
# environment ids of every suite
# ------------------------------------------------------------------------------------------

SUITES = "['brax', 'craftax', 'gymnax', 'jumanji', 'navix', 'xminigrid']"

BAD_IDS = [
    # not a string
    (envs.parse_id, None, "environment id None is not a non-empty string"),
    (envs.parse_id, 3, "environment id 3 is not a non-empty string"),
    (envs.parse_id, b"CartPole-v1", "environment id b'CartPole-v1' is not a non-empty string"),
    (envs.parse_id, ["brax/ant"], "is not a non-empty string"),
    # suites are lower-case names, and every id names an environment
    (envs.parse_id, "/CartPole-v1", f"unknown suite '' in '/CartPole-v1'; suites: {SUITES}"),
    (envs.parse_id, "Brax/ant", "unknown suite 'Brax'"),
    (envs.parse_id, "gym/CartPole-v1", "e.g. 'brax/inverted_pendulum'"),
    (envs.parse_id, " brax/ant", "unknown suite ' brax'"),
    *[(envs.parse_id, f"{suite}/", f"environment id '{suite}/' names no environment of {suite}")
      for suite in ("brax", "jumanji", "navix", "xminigrid", "craftax")],
    # names each suite does not register, with the names it does
    (envs.make, "gymnax/gymnax/CartPole-v1", "unknown environment 'gymnax/CartPole-v1' in "
                                             "gymnax; registered gymnax environments"),
    (envs.make, "gymnax/cartpole-v1", "unknown environment 'cartpole-v1' in gymnax"),
    (envs.make, "brax//ant", "unknown brax environment '/ant'; brax has ['ant'"),
    (envs.make, "brax/antt", "unknown brax environment 'antt'"),
    (envs.make, "brax/Ant", "'inverted_pendulum'"),
    (envs.make, "jumanji/Snake-v0", "unknown jumanji environment 'Snake-v0'; jumanji has"),
    (envs.make, "jumanji/snake-v1", "'Snake-v1'"),
    (envs.make, "jumanji/Sudoku-v0", "its action spec, a MultiDiscreteArray"),
    (envs.make, "navix/Navix-Empty-5x5", "unknown navix environment 'Navix-Empty-5x5'"),
    (envs.make, "navix/Empty-5x5-v0", "purea2c.envs.ids('navix')"),
    (envs.make, "xminigrid/MiniGrid-Empty-5x5-v0",
     "unknown xminigrid environment 'MiniGrid-Empty-5x5-v0'"),
    (envs.make, "xminigrid/XLand-MiniGrid-R1-9x9", "needs a ruleset from a benchmark"),
    (envs.make, "craftax/Craftax-Classic", "unknown craftax environment 'Craftax-Classic'; "
                                           "craftax has ['Craftax-Classic-Pixels-v1'"),
    (envs.make, "craftax/craftax-symbolic-v1", "'Craftax-Symbolic-v1'"),
    # neither an id nor an environment
    (envs.make, None, "None is neither an environment id nor an object"),
    (envs.make, 3.5, "(observation_spec, action_spec, max_episode_steps, reset, step)"),
    # suites by name
    (envs.ids, "nosuite", f"unknown suite 'nosuite'; suites: {SUITES}"),
    (envs.ids, "Brax", "unknown suite 'Brax'"),
    (envs.ids, None, "unknown suite None"),
    (envs.describe, ["nosuite"], "unknown suite 'nosuite'"),
    (envs.describe, ["gymnax", "Brax"], "unknown suite 'Brax'"),
    (envs.describe, ["gymnax/CartPole-v1"], "unknown suite 'gymnax/CartPole-v1'"),
    (envs.describe, [None], "unknown suite None"),
]


@pytest.mark.parametrize("function, value, message", BAD_IDS,
                         ids=[f"{f.__name__}({v!r})" for f, v, _ in BAD_IDS])
def test_a_bad_environment_id_is_one_clear_error(function, value, message):
    _raises(lambda: function(value), envs.EnvError, message)


def test_one_suite_named_alone_is_that_suite():
    assert envs.describe("gymnax").splitlines()[1].startswith("gymnax")


# ------------------------------------------------------------------------------------------
# each suite's keywords
# ------------------------------------------------------------------------------------------

CARTPOLE = "gymnax/CartPole-v1"
BRAX = "brax/ant"
SNAKE = "jumanji/Snake-v1"
NAVIX = "navix/Navix-Empty-5x5-v0"
MINIGRID = "xminigrid/MiniGrid-Empty-5x5"
CRAFTAX = "craftax/Craftax-Classic-Symbolic-v1"

BAD_KEYWORDS = [
    # gymnax: the parameters of the env, each of its default's kind
    (CARTPOLE, {"max_steps_in_episode": 0}, "max_steps_in_episode=0 is not an int >= 1"),
    (CARTPOLE, {"max_steps_in_episode": -1}, "max_steps_in_episode=-1 is not an int >= 1"),
    (CARTPOLE, {"max_steps_in_episode": 1.5}, "max_steps_in_episode=1.5 is not an int >= 1"),
    (CARTPOLE, {"max_steps_in_episode": True}, "max_steps_in_episode=True is not an int"),
    (CARTPOLE, {"max_steps_in_episode": "100"}, "max_steps_in_episode='100' is not an int"),
    (CARTPOLE, {"max_steps_in_episode": None}, "max_steps_in_episode=None is not an int"),
    (CARTPOLE, {"gravity": "high"}, "gravity='high' is not a real number (default 9.8)"),
    (CARTPOLE, {"gravity": (1.0, 2.0)}, "gravity=(1.0, 2.0) is not a real number"),
    (CARTPOLE, {"gravity": None}, "gravity=None is not a real number"),
    (CARTPOLE, {"gravity": float("nan")}, "gravity=nan is not a real number"),
    (CARTPOLE, {"max_steps": 10}, "gymnax/CartPole-v1 takes no keyword 'max_steps'; its "
                                  "parameters are ['max_steps_in_episode'"),
    ("gymnax/Pendulum-v1", {"max_torque": None}, "max_torque=None is not a real number"),
    # brax: its adapter's keywords and the env's constructor's
    (BRAX, {"action_repeat": 2}, "action_repeat is not supported"),
    (BRAX, {"episode_length": 0}, "brax/ant: episode_length must be an int >= 1, got 0"),
    (BRAX, {"episode_length": True}, "episode_length must be an int >= 1, got True"),
    (BRAX, {"episode_length": 2.5}, "episode_length must be an int >= 1, got 2.5"),
    (BRAX, {"episode_length": "1000"}, "episode_length must be an int >= 1, got '1000'"),
    (BRAX, {"max_steps": 5}, "brax/ant takes no keyword 'max_steps'; it takes ['backend'"),
    # jumanji: purea2c's time limit and the env's constructor's keywords
    (SNAKE, {"max_episode_steps": 0}, "max_episode_steps must be an int >= 1, got 0"),
    (SNAKE, {"max_episode_steps": -1}, "max_episode_steps must be an int >= 1, got -1"),
    (SNAKE, {"max_episode_steps": True}, "max_episode_steps must be an int >= 1, got True"),
    (SNAKE, {"max_episode_steps": 2.5}, "max_episode_steps must be an int >= 1, got 2.5"),
    (SNAKE, {"episode_length": 5}, "jumanji/Snake-v1 takes no keyword 'episode_length'; it "
                                   "takes ['num_rows'"),
    (SNAKE, {"num_rows": "x"}, "jumanji/Snake-v1 cannot be made with {'num_rows': 'x'}"),
    # navix: the env's fields, less the grid's size the id fixes
    (NAVIX, {"max_steps": 0}, "navix/Navix-Empty-5x5-v0: max_steps must be an int >= 1, got 0"),
    (NAVIX, {"max_steps": -5}, "max_steps must be an int >= 1, got -5"),
    (NAVIX, {"max_steps": True}, "max_steps must be an int >= 1, got True"),
    (NAVIX, {"max_steps": "50"}, "max_steps must be an int >= 1, got '50'"),
    (NAVIX, {"height": 7}, "takes no keyword 'height'; it takes ['action_set'"),
    (NAVIX, {"max_step": 7}, "takes no keyword 'max_step'"),
    # xminigrid: max_steps and view_size
    (MINIGRID, {"max_steps": 0}, "max_steps must be an int >= 1, got 0"),
    (MINIGRID, {"view_size": 0}, "view_size must be an int >= 1, got 0"),
    (MINIGRID, {"view_size": True}, "view_size must be an int >= 1, got True"),
    (MINIGRID, {"view_size": 2.0}, "view_size must be an int >= 1, got 2.0"),
    (MINIGRID, {"height": 9}, "takes no keyword 'height'; it takes ['max_steps', 'view_size']"),
    (MINIGRID, {"render_mode": "rgb"}, "takes no keyword 'render_mode'"),
    (MINIGRID, {"max_step": 9}, "takes no keyword 'max_step'"),
    # craftax: the env's parameters, each of its default's kind
    (CRAFTAX, {"max_timesteps": 0}, "max_timesteps=0 is not an int >= 1"),
    (CRAFTAX, {"max_timesteps": True}, "max_timesteps=True is not an int >= 1"),
    (CRAFTAX, {"max_timesteps": 2**31}, "max_timesteps=2147483648 is not an int >= 1"),
    (CRAFTAX, {"max_timesteps": 10.0}, "max_timesteps=10.0 is not an int >= 1"),
    (CRAFTAX, {"episode_length": 10}, "takes no keyword 'episode_length'; its parameters are "
                                      "['max_timesteps'"),
    (CRAFTAX, {"day_length": "long"}, "day_length='long' is not of type int (default 300)"),
    (CRAFTAX, {"fractal_noise_angles": (1, 2)}, "fractal_noise_angles=(1, 2) is not of type "
                                                "tuple"),
]


@pytest.mark.parametrize("env_id, kwargs, message", BAD_KEYWORDS,
                         ids=[f"{e}-{k}" for e, k, _ in BAD_KEYWORDS])
def test_a_bad_keyword_of_a_suite_is_one_clear_error(env_id, kwargs, message):
    _raises(lambda: envs.make(env_id, **kwargs), envs.EnvError, message)


# ------------------------------------------------------------------------------------------
# Config(env=..., env_kwargs=...), Config.max_skipped_share, Config.preset
# ------------------------------------------------------------------------------------------

BAD_CONFIGS = [
    # env_kwargs: a dict of keywords with hashable values
    (dict(env_kwargs=3), "Config.env_kwargs=3 is invalid: must be a dict of keyword arguments"),
    (dict(env_kwargs="abc"), "Config.env_kwargs='abc' is invalid: must be a dict"),
    (dict(env_kwargs=[("a",)]), "or (name, value) pairs"),
    (dict(env_kwargs={1: 2}), "keyword 1 is not a Python identifier"),
    (dict(env_kwargs={"not-ident": 1}), "keyword 'not-ident' is not a Python identifier"),
    (dict(env_kwargs={"": 1}), "keyword '' is not a Python identifier"),
    (dict(env_kwargs={"x": {"a": 1}}), "the value of 'x' must be hashable (a number, string, "
                                       "bool, None or tuple)"),
    (dict(env_kwargs={"x": {1, 2}}), "the value of 'x' must be hashable"),
    (dict(env_kwargs={"x": [[1], [2]]}), "the value of 'x' must be hashable"),
    # env: an id of a suite
    (dict(env=""), "Config.env='' is invalid: environment id '' is not a non-empty string"),
    (dict(env="nosuite/x"), "Config.env='nosuite/x' is invalid: unknown suite 'nosuite'"),
    (dict(env="brax/"), "Config.env='brax/' is invalid: environment id 'brax/' names no"),
    (dict(env=b"CartPole-v1"), "Config.env=b'CartPole-v1' is invalid"),
    # env and its keywords
    (dict(env_kwargs={"max_steps_in_episode": 2.5}),
     "Config.env='CartPole-v1' is invalid: gymnax/CartPole-v1: max_steps_in_episode=2.5 is "
     "not an int >= 1"),
    (dict(env="brax/inverted_pendulum", env_kwargs={"episode_length": 0}),
     "Config.env='brax/inverted_pendulum' is invalid: brax/inverted_pendulum: episode_length "
     "must be an int >= 1, got 0"),
    (dict(env="brax/inverted_pendulum", env_kwargs={"episode_lenght": 100}),
     "takes no keyword 'episode_lenght'; it takes ['backend', 'debug', 'episode_length'"),
    (dict(env=NAVIX, env_kwargs={"max_steps": -5}), "max_steps must be an int >= 1, got -5"),
    (dict(env=SNAKE, env_kwargs={"max_episode_steps": 0}),
     "Config.env='jumanji/Snake-v1' is invalid: jumanji/Snake-v1: max_episode_steps"),
    (dict(env=MINIGRID, env_kwargs={"view_size": 0}), "view_size must be an int >= 1, got 0"),
    (dict(env=CRAFTAX, env_kwargs={"max_timesteps": -1}), "max_timesteps=-1 is not an int"),
    # settings the env's spaces do not suit
    (dict(env=SNAKE, exploration="gsde"),
     "Config.exploration='gsde' is invalid: 'gsde' needs Box actions; jumanji/Snake-v1 has "
     "discrete ones"),
    (dict(env=SNAKE, scale_obs=True), "Config.scale_obs=True is invalid: needs an array "
                                      "observation; jumanji/Snake-v1's is a pytree"),
    (dict(env=SNAKE, normalize_obs=True), "Config.normalize_obs=True is invalid"),
    (dict(env="brax/inverted_pendulum", torso="cnn"),
     "Config.torso='cnn' is invalid: 'cnn' needs observations of shape (H, W) or (H, W, C); "
     "brax/inverted_pendulum has (4,)"),
    # max_skipped_share: a Python float in (0, 1]
    *[(dict(max_skipped_share=value), f"Config.max_skipped_share={value!r} is invalid: must "
                                      "be a Python float in (0, 1]")
      for value in (float("inf"), -float("inf"), 2, -1, 0.5j, [0.5], 1e-400)],
]


@pytest.mark.parametrize("kwargs, message", BAD_CONFIGS,
                         ids=[repr(k)[:60] for k, _ in BAD_CONFIGS])
def test_a_bad_config_of_an_env_is_one_clear_error(kwargs, message):
    _raises(lambda: Config(**kwargs), ValueError, message)


PRESETS = "presets: ['Acrobot-v1'"

BAD_PRESETS = [
    ((None,), {}, ValueError, f"unknown preset None; {PRESETS}"),
    (("",), {}, ValueError, "unknown preset ''"),
    (("brax/nope",), {}, ValueError, "unknown preset 'brax/nope'"),
    (("cartpole-v1",), {}, ValueError, "'CartPole-v1'"),
    (("navix/Navix-Empty-5x5",), {}, ValueError, "'navix/Navix-Empty-5x5-v0'"),
    (("CartPole-v1",), {"colour": 1}, TypeError, "unexpected keyword argument 'colour'"),
    (("CartPole-v1",), {"env_kwargs": {"x": 1}}, ValueError,
     "gymnax/CartPole-v1 takes no keyword 'x'"),
    (("CartPole-v1",), {"env_kwargs": 5}, ValueError, "Config.env_kwargs=5 is invalid"),
    (("navix/Navix-Empty-5x5-v0",), {"env_kwargs": {"max_steps": 0}}, ValueError,
     "navix/Navix-Empty-5x5-v0: max_steps must be an int >= 1, got 0"),
    (("brax/inverted_pendulum",), {"env_kwargs": {"episode_length": -1}}, ValueError,
     "episode_length must be an int >= 1, got -1"),
    (("CartPole-v1",), {"max_skipped_share": 0}, ValueError, "Config.max_skipped_share=0"),
    (("CartPole-v1",), {"env": "nosuite/x"}, ValueError, "unknown suite 'nosuite'"),
]


@pytest.mark.parametrize("args, kwargs, error, message", BAD_PRESETS,
                         ids=[f"{a}-{k}"[:60] for a, k, _, _ in BAD_PRESETS])
def test_a_bad_preset_is_one_clear_error(args, kwargs, error, message):
    _raises(lambda: Config.preset(*args, **kwargs), error, message)


# ------------------------------------------------------------------------------------------
# objects that break the protocol, given to envs.check or as Config(env=<object>)
# ------------------------------------------------------------------------------------------


class _Env:
    """A minimal env that follows the protocol; `_broken` builds subclasses that do not."""

    observation_spec = envs.ArraySpec((2,), np.float32)
    action_spec = envs.ActionSpec(True, 2, None, None)
    max_episode_steps = 10

    def reset(self, key):
        return jnp.zeros((2,), jnp.float32), jnp.zeros((), jnp.int32)

    def step(self, key, state, action):
        state = state + 1
        return envs.EnvStep(jnp.full((2,), state, jnp.float32), state, jnp.zeros(()),
                            state >= 3, jnp.zeros((), bool))


def _broken(name, **attributes):
    """An instance of a subclass of `_Env` with ``attributes`` replaced (functions become
    methods)."""
    return type(name, (_Env,), attributes)()


def _stepping(**fields):
    """A ``step`` method that returns `_Env`'s step with ``fields`` replaced (callables get
    the state)."""
    def step(self, key, state, action):
        out = _Env.step(self, key, state, action)
        return out._replace(**{k: v(out.state) if callable(v) else v
                               for k, v in fields.items()})
    return step


def _box(low, high, n=1):
    return envs.ActionSpec(False, n, None if low is None else np.asarray(low, np.float32),
                           None if high is None else np.asarray(high, np.float32))


def _mask_spec(shape, dtype):
    return {"x": envs.ArraySpec((2,), np.float32), "action_mask": envs.ArraySpec(shape, dtype)}


def _mask_reset(shape, dtype):
    def reset(self, key):
        return ({"x": jnp.zeros((2,), jnp.float32), "action_mask": jnp.ones(shape, dtype)},
                jnp.zeros((), jnp.int32))
    return reset


def _mask_step(shape, dtype):
    def step(self, key, state, action):
        obs = {"x": jnp.zeros((2,), jnp.float32), "action_mask": jnp.ones(shape, dtype)}
        return envs.EnvStep(obs, state + 1, jnp.zeros(()), state >= 3, jnp.zeros((), bool))
    return step


BROKEN = [
    # the action spec
    ("action_spec None", dict(action_spec=None),
     "action_spec must be a purea2c.envs.ActionSpec (discrete, num_actions, low, high), got "
     "None"),
    ("action_spec a tuple", dict(action_spec=(True, 2)), "got (True, 2)"),
    ("no actions", dict(action_spec=envs.ActionSpec(True, 0, None, None)),
     "action_spec.num_actions must be an int >= 1, got 0"),
    ("2.5 actions", dict(action_spec=envs.ActionSpec(True, 2.5, None, None)),
     "action_spec.num_actions must be an int >= 1, got 2.5"),
    ("discrete not a bool", dict(action_spec=envs.ActionSpec("yes", 2, None, None)),
     "action_spec.discrete must be a bool, got 'yes'"),
    ("Box without bounds", dict(action_spec=_box(None, None, 2)),
     "a Box action_spec needs low bounds of shape (2,) (purea2c.envs.box_spec builds them)"),
    ("Box bounds of another shape", dict(action_spec=_box([0, 0, 0], [1, 1, 1], 2)),
     "needs low bounds of shape (2,)"),
    ("Box bound NaN", dict(action_spec=_box([np.nan], [1.0])), "action_spec.low has NaN"),
    ("Box low above high", dict(action_spec=_box([2.0], [1.0])),
     "action_spec.low must be <= high"),
    # the observation spec
    ("obs spec of ints", dict(observation_spec=(2,)),
     "observation_spec[0] must be a purea2c.envs.ArraySpec (or a pytree of them), got 2"),
    ("obs spec a dict, obs an array",
     dict(observation_spec={"x": envs.ArraySpec((2,), np.float32)}),
     "reset's observation has the structure PyTreeDef(*); observation_spec says "
     "PyTreeDef({'x': *})"),
    ("obs spec negative dimension", dict(observation_spec=envs.ArraySpec((-2,), np.float32)),
     "observation_spec.shape must be a tuple of ints >= 0, got (-2,)"),
    ("obs spec shape a list", dict(observation_spec=envs.ArraySpec([2], np.float32)),
     "observation_spec.shape must be a tuple of ints >= 0, got [2]"),
    ("obs spec complex", dict(observation_spec=envs.ArraySpec((2,), np.complex64)),
     "observation_spec.dtype must be a real number or bool dtype, got complex64"),
    ("obs spec dtype not a dtype", dict(observation_spec=envs.ArraySpec((2,), "float99")),
     "observation_spec.dtype 'float99' is not a dtype"),
    ("obs bounds NaN",
     dict(observation_spec=envs.ArraySpec((2,), np.float32, np.array([np.nan, 0.0]),
                                          np.ones(2))),
     "observation_spec.low has NaN (use -inf or inf for an unbounded dimension)"),
    ("obs bounds of another shape",
     dict(observation_spec=envs.ArraySpec((2,), np.float32, np.zeros(3), np.ones(3))),
     "observation_spec.low must be numbers of shape (2,)"),
    ("obs low above high",
     dict(observation_spec=envs.ArraySpec((2,), np.float32, np.ones(2), np.zeros(2))),
     "observation_spec.low must be <= high"),
    ("action mask of another length",
     dict(observation_spec=_mask_spec((3,), bool), reset=_mask_reset((3,), bool),
          step=_mask_step((3,), bool)),
     "observation_spec['action_mask'] must be bool [2] (one flag per action), got bool[3]"),
    ("action mask not bool",
     dict(observation_spec=_mask_spec((2,), np.float32), reset=_mask_reset((2,), jnp.float32),
          step=_mask_step((2,), jnp.float32)),
     "observation_spec['action_mask'] must be bool [2]"),
    # max_episode_steps
    ("max_episode_steps 0", dict(max_episode_steps=0), "max_episode_steps must be an int >= 1, "
                                                       "got 0"),
    ("max_episode_steps 1.5", dict(max_episode_steps=1.5), "got 1.5"),
    ("max_episode_steps True", dict(max_episode_steps=True), "got True"),
    ("max_episode_steps '10'", dict(max_episode_steps="10"), "got '10'"),
    ("max_episode_steps None", dict(max_episode_steps=None), "got None"),
    # reset
    ("reset returns the obs alone", dict(reset=lambda self, key: jnp.zeros(2)),
     "reset or step failed: TypeError: cannot unpack"),
    ("reset returns three", dict(reset=lambda self, key: (jnp.zeros(2), 0, 0)),
     "reset or step failed: ValueError: too many values to unpack"),
    ("reset raises", dict(reset=lambda self, key: 1 / 0),
     "reset or step failed: ZeroDivisionError: division by zero"),
    ("reset not callable", dict(reset=3), "reset must be a method, got 3"),
    ("reset obs complex",
     dict(reset=lambda self, key: (jnp.zeros(2, jnp.complex64), jnp.zeros((), jnp.int32))),
     "reset's observation has dtype complex64, not a real number or bool"),
    ("reset obs of rank 2",
     dict(reset=lambda self, key: (jnp.zeros((2, 1)), jnp.zeros((), jnp.int32))),
     "reset's observation has shape (2, 1); observation_spec says ArraySpec(shape=(2,)"),
    # step
    ("step returns a tuple",
     dict(step=lambda self, k, s, a: (jnp.zeros(2), s, jnp.zeros(()), s > 3, s < 0)),
     "step must return purea2c.envs.EnvStep, got tuple"),
    ("step returns a dict", dict(step=lambda self, k, s, a: {"obs": jnp.zeros(2)}),
     "step must return purea2c.envs.EnvStep, got dict"),
    ("step not callable", dict(step=None), "step must be a method, got None"),
    ("reward int", dict(step=_stepping(reward=jnp.zeros((), jnp.int32))),
     "step's reward must be a float scalar, got int32[]"),
    ("reward bool", dict(step=_stepping(reward=lambda s: s > 3)),
     "step's reward must be a float scalar, got bool[]"),
    ("reward complex", dict(step=_stepping(reward=jnp.zeros((), jnp.complex64))),
     "step's reward must be a float scalar, got complex64[]"),
    ("reward None", dict(step=_stepping(reward=None)),
     "step's reward must be a float scalar, got None (NoneType)"),
    ("terminated float", dict(step=_stepping(terminated=jnp.zeros(()))),
     "step's terminated must be a bool scalar, got float32[]"),
    ("terminated a vector", dict(step=_stepping(terminated=jnp.zeros((1,), bool))),
     "step's terminated must be a bool scalar, got bool[1]"),
    ("truncated int", dict(step=_stepping(truncated=lambda s: s * 0)),
     "step's truncated must be a bool scalar, got int32[]"),
    ("truncated None", dict(step=_stepping(truncated=None)),
     "step's truncated must be a bool scalar, got None (NoneType)"),
    ("step obs of another shape", dict(step=_stepping(obs=jnp.zeros(3))),
     "step's observation has shape (3,); observation_spec says"),
    ("step obs None", dict(step=_stepping(obs=None)),
     "step's observation has the structure PyTreeDef(None); observation_spec says PyTreeDef(*)"),
    ("step obs a string", dict(step=_stepping(obs="nan")),
     "reset or step failed: TypeError"),
    ("state changes dtype", dict(step=_stepping(state=lambda s: s.astype(jnp.float32))),
     "step's state is float32[]; reset's is int32[] (they must match)"),
    ("state changes shape", dict(step=_stepping(state=lambda s: jnp.stack([s, s]))),
     "step's state is int32[2]; reset's is int32[] (they must match)"),
    ("state changes structure", dict(step=_stepping(state=lambda s: (s, s))),
     "step's state has the structure PyTreeDef((*, *)); reset's has PyTreeDef(*)"),
]


@pytest.mark.parametrize("surface", ["check", "Config"])
@pytest.mark.parametrize("name, attributes, message", BROKEN, ids=[n for n, _, _ in BROKEN])
def test_an_env_object_that_breaks_the_protocol_is_refused_before_compiling(
        surface, name, attributes, message):
    env = _broken(name.replace(" ", "_"), **attributes)
    before = len(_compiles)
    if surface == "check":
        _raises(lambda: envs.check(env), envs.EnvError, f"{env!r}: ", message)
    else:
        _raises(lambda: Config(env=env), ValueError,
                f"Config.env={env!r} is invalid: {env!r}: ", message)
    assert len(_compiles) == before  # traced abstractly: no program was built


class _NoStep:
    observation_spec = envs.ArraySpec((2,), np.float32)
    action_spec = envs.ActionSpec(True, 2, None, None)
    max_episode_steps = 10

    def reset(self, key):
        return jnp.zeros(2), jnp.zeros((), jnp.int32)


class _NoSpecs:
    def reset(self, key):
        return jnp.zeros(2), jnp.zeros((), jnp.int32)

    def step(self, key, state, action):
        return _Env.step(self, key, state, action)


MISSING = [
    (envs.check, _NoStep(), "does not follow the protocol of purea2c.envs: it has no step (an "
                            "env has observation_spec, action_spec, max_episode_steps, reset, "
                            "step)"),
    (envs.check, _NoSpecs(), "it has no observation_spec, action_spec, max_episode_steps"),
    (envs.check, 42, "42 does not follow the protocol of purea2c.envs: it has none of "
                     "observation_spec, action_spec"),
    (envs.check, None, "None does not follow the protocol"),
    (envs.make, _NoStep(), "is neither an environment id nor an object with the protocol"),
    (envs.make, _NoSpecs(), "or with the gymnax 1.x API"),
]


@pytest.mark.parametrize("function, env, message", MISSING,
                         ids=[f"{f.__name__}-{type(e).__name__}" for f, e, _ in MISSING])
def test_an_object_without_the_protocol_is_named(function, env, message):
    _raises(lambda: function(env), envs.EnvError, message)


# ------------------------------------------------------------------------------------------
# divergence and checkpoint retention
# ------------------------------------------------------------------------------------------

def test_divergence_refuses_a_negative_chunk():
    metrics = {"skipped_updates": np.zeros((2, 4), np.int32), "finite": np.ones((2, 4), bool)}
    _raises(lambda: purea2c.divergence(metrics, Config(), chunk=-1), ValueError,
            "divergence: chunk must be an int >= 1, got -1")


@pytest.mark.parametrize("keep", [-1, 1.5, True, "2"])
def test_prune_refuses_a_bad_count(keep, tmp_path):
    _raises(lambda: checkpoint.prune(tmp_path, keep=keep), ValueError,
            f"checkpoint keep must be an integer >= 1 or None, got {keep!r}")


# ------------------------------------------------------------------------------------------
# the command line: purea2c envs, purea2c train --env ... --env-kwargs ...
# ------------------------------------------------------------------------------------------

USAGE_ENVS = "(usage: purea2c envs"

# (argv, what the one line on stderr names); every one exits 2. Train command lines get
# "--out {tmp}/out", which must not be created.
BAD_COMMAND_LINES = [
    # purea2c envs [SUITE...] [--ids]
    (["envs", "Brax"], ["unknown suite 'Brax'", SUITES, USAGE_ENVS]),
    (["envs", "gymnax", "nosuite"], ["unknown suite 'nosuite'"]),
    (["envs", ""], ["unknown suite ''"]),
    (["envs", "gymnax/CartPole-v1"], ["unknown suite 'gymnax/CartPole-v1'"]),
    (["envs", "--ids", "navix/"], ["unknown suite 'navix/'"]),
    (["envs", "--idz"], ["unrecognized arguments: --idz", USAGE_ENVS]),
    (["envs", "-x"], ["unrecognized arguments: -x"]),
    (["envs", "--ids=yes"], ["argument --ids: ignored explicit argument 'yes'"]),
    (["envs", "gymnax", "--seeds", "2"], ["unrecognized arguments: --seeds 2", USAGE_ENVS]),
    # --env: an id of a suite
    (["--env", ""], ["Config.env=''", "is not a non-empty string"]),
    (["--env", "nosuite/x"], ["unknown suite 'nosuite' in 'nosuite/x'", SUITES]),
    (["--env", "brax/"], ["environment id 'brax/' names no environment of brax"]),
    (["--env", "Brax/ant"], ["unknown suite 'Brax'"]),
    (["--env", "gymnax/cartpole-v1"], ["unknown environment 'cartpole-v1' in gymnax"]),
    (["--env", "jumanji/Sudoku-v0"], ["its action spec, a MultiDiscreteArray"]),
    (["--env", "xminigrid/XLand-MiniGrid-R1-9x9"], ["needs a ruleset from a benchmark"]),
    (["--env", "gymnax/MNISTBandit-bsuite"], ["downloads a data set"]),
    (["--env"], ["argument --env: expected one argument"]),
    # --env-kwargs NAME=VALUE ...
    (["--env-kwargs", "noequals"], ["--env-kwargs: expected NAME=VALUE, got 'noequals'"]),
    (["--env-kwargs", "=5"], ["expected NAME=VALUE, got '=5'"]),
    (["--env-kwargs", "1x=5"], ["expected NAME=VALUE, got '1x=5'"]),
    (["--env-kwargs", "max-steps=5"], ["expected NAME=VALUE, got 'max-steps=5'"]),
    (["--env-kwargs", "x=5"], ["gymnax/CartPole-v1 takes no keyword 'x'",
                               "'max_steps_in_episode'"]),
    (["--env-kwargs", "max_steps_in_episode=0"], ["max_steps_in_episode=0 is not an int >= 1"]),
    (["--env-kwargs", "max_steps_in_episode=2.5"], ["max_steps_in_episode=2.5 is not an int"]),
    (["--env-kwargs", "max_steps_in_episode=abc"], ["max_steps_in_episode='abc' is not an int"]),
    (["--env-kwargs", "gravity=[1]"], ["gravity=(1,) is not a real number (default 9.8)"]),
    (["--env-kwargs", "gravity={'a': 1}"], ["Config.env_kwargs=", "the value of 'gravity' "
                                                                  "must be hashable"]),
    (["--env-kwargs", "gravity=None"], ["gravity=None is not a real number"]),
    (["--env-kwargs", "gravity=nan"], ["gravity='nan' is not a real number"]),
    (["--env", "brax/inverted_pendulum", "--env-kwargs", "episode_length=0"],
     ["episode_length must be an int >= 1, got 0"]),
    (["--env", "brax/inverted_pendulum", "--env-kwargs", "episode_lenght=100"],
     ["takes no keyword 'episode_lenght'"]),
    (["--env", "brax/inverted_pendulum", "--env-kwargs", "action_repeat=2"],
     ["action_repeat is not supported"]),
    (["--env", NAVIX, "--env-kwargs", "max_steps=-1"], ["max_steps must be an int >= 1, got -1"]),
    (["--env", NAVIX, "--env-kwargs", "height=9"], ["takes no keyword 'height'"]),
    (["--env", SNAKE, "--env-kwargs", "max_episode_steps=True"],
     ["max_episode_steps must be an int >= 1, got True"]),
    (["--env", SNAKE, "--env-kwargs", "num_rows=x"], ["cannot be made with {'num_rows': 'x'}"]),
    (["--env", MINIGRID, "--env-kwargs", "view_size=0"], ["view_size must be an int >= 1"]),
    (["--env", CRAFTAX, "--env-kwargs", "max_timesteps=0"], ["max_timesteps=0 is not an int"]),
    (["--env", CRAFTAX, "--env-kwargs", "day_length=long"], ["day_length='long' is not of type "
                                                             "int (default 300)"]),
    # settings the env's spaces do not suit
    (["--env", SNAKE, "--scale-obs"], ["Config.scale_obs=True", "needs an array observation"]),
    (["--env", SNAKE, "--exploration", "gsde"], ["'gsde' needs Box actions"]),
    (["--env", "brax/inverted_pendulum", "--torso", "cnn"],
     ["'cnn' needs observations of shape (H, W) or (H, W, C)"]),
    # presets of the suites
    (["--preset", "brax/nope"], ["--preset", "invalid choice: 'brax/nope'"]),
    (["--preset", NAVIX, "--env-kwargs", "max_steps=0"], ["max_steps must be an int >= 1"]),
    # --max-skipped-share
    (["--max-skipped-share", "inf"], ["Config.max_skipped_share=inf", "in (0, 1]"]),
    (["--max-skipped-share", "-1"], ["Config.max_skipped_share=-1.0", "in (0, 1]"]),
    (["--max-skipped-share", "1e-400"], ["Config.max_skipped_share=0.0", "in (0, 1]"]),
    (["--max-skipped-share", "half"], ["--max-skipped-share: invalid float value: 'half'"]),
    (["--max-skipped-share"], ["--max-skipped-share: expected one argument"]),
]


@pytest.fixture
def no_training_program(monkeypatch):
    """Building the training program fails the test."""
    def compiled(*args, **kwargs):
        raise AssertionError("a training program was built")

    monkeypatch.setattr(run_loop, "vmapped_init", compiled)
    monkeypatch.setattr(run_loop, "ChunkProgram", compiled)


@pytest.mark.parametrize("argv, names", BAD_COMMAND_LINES,
                         ids=[" ".join(a)[:60] for a, _ in BAD_COMMAND_LINES])
def test_a_bad_command_line_of_the_suites_is_one_line(argv, names, tmp_path, capsys,
                                                      no_training_program):
    if argv[0] != "envs":
        argv = ["train", *argv, "--out", str(tmp_path / "out"), "--no-compile-cache"]
    start = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert time.perf_counter() - start < 20
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("purea2c: error: ")
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert not (tmp_path / "out").exists()


def test_count_of_new_bad_inputs():
    count = (len(BAD_IDS) + len(BAD_KEYWORDS) + len(BAD_CONFIGS) + len(BAD_PRESETS)
             + 2 * len(BROKEN) + len(MISSING) + 1 + 4 + len(BAD_COMMAND_LINES))
    assert count >= 100


# ------------------------------------------------------------------------------------------
# The Python API's checks of divergence, presets, env_kwargs pairs and prune
# ------------------------------------------------------------------------------------------

_FINITE = {"finite": np.ones((1, 2), bool)}


@pytest.mark.parametrize("call, error, message", [
    (lambda: purea2c.Config.preset(["CartPole-v1"]), ValueError, "unknown preset"),
    (lambda: purea2c.Config.preset(None), ValueError, "unknown preset"),
    (lambda: purea2c.Config(env_kwargs=[["a", 1], ["a", 2]]), ValueError,
     "'a' is given more than once"),
    (lambda: purea2c.divergence(_FINITE, None, chunk=1.5), ValueError, "chunk must be an int"),
    (lambda: purea2c.divergence(_FINITE, None, chunk="2"), ValueError, "chunk must be an int"),
    (lambda: purea2c.divergence(_FINITE, None, chunk=True), ValueError, "chunk must be an int"),
    (lambda: purea2c.divergence(_FINITE, None, start_iteration=-1), ValueError,
     "start_iteration must be an int >= 0"),
    (lambda: purea2c.divergence(_FINITE, None, start_iteration=1.5), ValueError,
     "start_iteration must be an int >= 0"),
    (lambda: purea2c.divergence({"skipped_updates": np.ones((1, 2))}, None), TypeError,
     "config must be the run's Config"),
    (lambda: purea2c.divergence({"skipped_updates": np.ones((1, 2))}, "CartPole-v1"),
     TypeError, "config must be the run's Config"),
    (lambda: purea2c.divergence([1, 2], purea2c.Config()), TypeError,
     "metrics must be a Metrics or a dict"),
    (lambda: purea2c.divergence(None, purea2c.Config()), TypeError,
     "metrics must be a Metrics or a dict"),
    (lambda: purea2c.divergence("metrics", purea2c.Config()), TypeError,
     "metrics must be a Metrics or a dict"),
    (lambda: purea2c.divergence({**_FINITE, "skipped_updates": np.ones((2, 2))},
                                purea2c.Config()), ValueError, "the metrics' shapes differ"),
    (lambda: checkpoint.prune("/tmp", None), ValueError, "keep must be an integer >= 1"),
])
def test_the_python_api_refuses_with_one_message(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
