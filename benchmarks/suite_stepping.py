"""Random-policy stepping rate of one environment, two ways: through the suite's own API and
through purea2c's env layer.

Both measurements step ``num_envs`` envs under ``vmap`` for ``steps`` steps in one jitted
``lax.scan``, acting uniformly at random (discrete: uniform over the actions, or over the
allowed ones where the observation holds an action mask; Box: uniform within the bounds).
The envs are reset by a separate jitted call before the timed program, which takes the reset
state as an argument. Compilation (trace + lower + XLA compile) is timed apart; the first
call of the compiled program is untimed, the next ``repeats`` calls are timed with
``block_until_ready`` and their median is ``run_s`` (`common.benchmark`). Env steps/s =
``num_envs * steps / run_s``. The program returns its final state and summed reward, so no
step is dead code.

(a) `own_stepping`: the suite's own API and its own auto-reset, as a user of the suite would
    step it; the ceiling of that suite (the random actions drawn step by step, one key per
    step):

    - gymnax (bare ids, e.g. ``CartPole-v1``): ``gymnax.make(name)``, ``env.step`` (which
      resets ended episodes, drawing a fresh one every step);
    - brax: ``brax.envs.create(name, episode_length=1000, batch_size=num_envs)`` (brax's
      ``EpisodeWrapper``, ``VmapWrapper`` and ``AutoResetWrapper``, as brax.training wraps
      envs; the backend is brax's default for the env, as in purea2c's presets);
    - jumanji: ``jumanji.wrappers.AutoResetWrapper(jumanji.make(name))`` under ``vmap``
      (``VmapWrapper(AutoResetWrapper(env))``, what ``VmapAutoResetWrapper`` is);
    - navix: ``navix.make(name)`` and its ``step`` (it resets lazily: the step after an
      episode's end returns the next episode's first timestep);
    - xminigrid: ``xminigrid.make(name)`` wrapped in ``xminigrid.wrappers.GymAutoResetWrapper``;
    - craftax: ``make_craftax_env_from_name(name, auto_reset=True)`` and its ``step`` (which
      generates a fresh world every step and selects it where an episode ended).

    Every suite gets raw ``uint32`` keys (``jax.random.PRNGKey``), the key type they are
    written for.

(b) `purea2c_stepping`: ``purea2c.envs.make(env_id)`` stepped exactly as training steps it
    (`purea2c.training`'s rollout): per block of ``chunk`` steps (default: the preset's
    ``rollout_length``), the env noise (`purea2c.envs.draw_step_noise`: transition keys and
    the fresh episodes to reset to) and the action noise are drawn in one call before the
    block's scan, and each step is `purea2c.envs.step_with` of `purea2c.envs.env_action`.
    A masked action is ``argmax`` of Gumbel noise over the allowed actions (the
    Gumbel-max sample of uniform logits, as the policy samples). When ``steps`` is not a
    multiple of ``chunk`` a last, shorter block makes up the rest.

    python benchmarks/suite_stepping.py [ID ...] [--num-envs 256] [--steps 200] [--repeats 5]

prints both rates for each id (default: purea2c's ``SUITE_PRESETS`` and ``CartPole-v1``);
it writes no file (`benchmarks/throughput.py` sweep C records them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import purea2c  # noqa: E402
from benchmarks import common  # noqa: E402
from purea2c import envs  # noqa: E402
from purea2c.envs.core import ACTION_MASK, ActionSpec, box_spec  # noqa: E402
from purea2c.presets import PRESETS, SUITE_PRESETS  # noqa: E402

DEFAULT_IDS = (*SUITE_PRESETS, "CartPole-v1")
# brax.envs.create's default time limit, also purea2c's brax adapter's.
BRAX_EPISODE_LENGTH = 1000


# ------------------------------------------------------------------------------------------
# Random actions
# ------------------------------------------------------------------------------------------


def draw_action_noise(key: jax.Array, spec: ActionSpec, shape: tuple[int, ...],
                      masked: bool) -> jax.Array:
    """The randomness of uniform random actions of leading shape ``shape``: a discrete
    action (int32 ``shape``) when unmasked; standard Gumbel noise ``[*shape, num_actions]``
    when an action mask will pick among the allowed actions (`action_from_noise`); a Box
    action uniform in ``[low, high]``, ``[*shape, d]``."""
    if spec.discrete and masked:
        return jax.random.gumbel(key, (*shape, spec.num_actions))
    if spec.discrete:
        return jax.random.randint(key, shape, 0, spec.num_actions)
    low, high = jnp.asarray(spec.low), jnp.asarray(spec.high)
    return jax.random.uniform(key, (*shape, spec.num_actions), jnp.float32, low, high)


def action_from_noise(noise: jax.Array, mask: jax.Array | None) -> jax.Array:
    """The action of `draw_action_noise`'s ``noise``: the noise itself, or with an action
    ``mask`` ``argmax`` of the Gumbel noise over the allowed actions, a uniform draw among
    them (action 0 where none is allowed)."""
    if mask is None:
        return noise
    return jnp.argmax(jnp.where(mask, noise, -jnp.inf), axis=-1).astype(jnp.int32)


def _mask_of(obs: Any) -> jax.Array | None:
    """A suite observation's action mask (a field or key ``action_mask``), or None."""
    if isinstance(obs, dict):
        return obs.get(ACTION_MASK)
    return getattr(obs, ACTION_MASK, None)


# ------------------------------------------------------------------------------------------
# (a) the suite's own API
# ------------------------------------------------------------------------------------------


class Stepper(NamedTuple):
    """``num_envs`` envs of a suite, stepped through its own API with random actions."""

    reset: Callable[[jax.Array], Any]  # key -> state of the batch
    step: Callable[[Any, jax.Array], tuple[Any, jax.Array]]  # (state, key) -> (state, reward)
    api: str  # what is stepped, in words


def _random_step(spec: ActionSpec, num_envs: int, key: jax.Array,
                 mask: jax.Array | None) -> jax.Array:
    """Uniform random actions of ``num_envs`` envs, drawn for one step."""
    return action_from_noise(draw_action_noise(key, spec, (num_envs,), mask is not None), mask)


def gymnax_stepper(name: str, num_envs: int) -> Stepper:
    import gymnax
    from gymnax.environments import spaces

    env, params = gymnax.make(name)
    space = env.action_space(params)
    spec = (ActionSpec(True, int(space.n), None, None) if isinstance(space, spaces.Discrete)
            else box_spec(space.low, space.high, space.shape))

    def reset(key):
        return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)

    def step(carry, key):
        _, state = carry
        key_act, key_step = jax.random.split(key)
        action = _random_step(spec, num_envs, key_act, None)
        # gymnax 1.0: (obs, state, reward, terminated, truncated, info)
        obs, state, reward = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key_step, num_envs), state, action, params)[:3]
        return (obs, state), reward

    return Stepper(reset, step, f"gymnax.make({name!r}), vmap(env.step) (auto-reset)")


def brax_stepper(name: str, num_envs: int) -> Stepper:
    import brax.envs

    env = brax.envs.create(name, episode_length=BRAX_EPISODE_LENGTH, batch_size=num_envs)
    spec = box_spec(-1.0, 1.0, (int(env.action_size),))

    def step(state, key):
        state = env.step(state, _random_step(spec, num_envs, key, None))
        return state, state.reward

    return Stepper(env.reset, step,
                   f"brax.envs.create({name!r}, episode_length={BRAX_EPISODE_LENGTH}, "
                   f"batch_size={num_envs}) (EpisodeWrapper, VmapWrapper, AutoResetWrapper)")


def jumanji_stepper(name: str, num_envs: int) -> Stepper:
    import jumanji
    from jumanji import specs
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make(name))
    action_spec = env.action_spec
    if not isinstance(action_spec, specs.DiscreteArray):
        raise ValueError(f"jumanji/{name}: only discrete actions are stepped here")
    spec = ActionSpec(True, int(action_spec.num_values), None, None)

    def step(carry, key):
        state, timestep = carry
        action = _random_step(spec, num_envs, key, _mask_of(timestep.observation))
        state, timestep = jax.vmap(env.step)(state, action)
        return (state, timestep), timestep.reward

    def reset(key):
        return jax.vmap(env.reset)(jax.random.split(key, num_envs))

    return Stepper(reset, step, f"vmap(AutoResetWrapper(jumanji.make({name!r})))")


def navix_stepper(name: str, num_envs: int) -> Stepper:
    import navix

    env = navix.make(name)
    spec = ActionSpec(True, len(env.action_set), None, None)

    def reset(key):
        with jax.numpy_rank_promotion("allow"):  # navix's code broadcasts ranks
            return jax.vmap(env.reset)(jax.random.split(key, num_envs))

    def step(timestep, key):
        with jax.numpy_rank_promotion("allow"):
            timestep = jax.vmap(env.step)(timestep, _random_step(spec, num_envs, key, None))
        return timestep, timestep.reward

    return Stepper(reset, step, f"navix.make({name!r}), vmap(env.step) (lazy auto-reset)")


def xminigrid_stepper(name: str, num_envs: int) -> Stepper:
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(name)
    env = GymAutoResetWrapper(env)
    spec = ActionSpec(True, int(env.num_actions(params)), None, None)

    def reset(key):
        with jax.numpy_rank_promotion("allow"):
            return jax.vmap(env.reset, in_axes=(None, 0))(params,
                                                          jax.random.split(key, num_envs))

    def step(timestep, key):
        action = _random_step(spec, num_envs, key, None)
        with jax.numpy_rank_promotion("allow"):
            timestep = jax.vmap(env.step, in_axes=(None, 0, 0))(params, timestep, action)
        return timestep, timestep.reward

    return Stepper(reset, step, f"GymAutoResetWrapper(xminigrid.make({name!r})), vmap(step)")


def craftax_stepper(name: str, num_envs: int) -> Stepper:
    from craftax.craftax_env import make_craftax_env_from_name

    env = make_craftax_env_from_name(name, auto_reset=True)
    params = env.default_params
    spec = ActionSpec(True, int(env.num_actions), None, None)

    def reset(key):
        return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)

    def step(carry, key):
        _, state = carry
        key_act, key_step = jax.random.split(key)
        action = _random_step(spec, num_envs, key_act, None)
        obs, state, reward, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key_step, num_envs), state, action, params)
        return (obs, state), reward

    return Stepper(reset, step, f"make_craftax_env_from_name({name!r}, auto_reset=True), "
                                "vmap(env.step)")


STEPPERS: dict[str, Callable[[str, int], Stepper]] = {
    "gymnax": gymnax_stepper,
    "brax": brax_stepper,
    "jumanji": jumanji_stepper,
    "navix": navix_stepper,
    "xminigrid": xminigrid_stepper,
    "craftax": craftax_stepper,
}


def suite_stepper(env_id: str, num_envs: int) -> Stepper:
    """The `Stepper` of ``env_id`` (``"suite/name"``, or a bare gymnax name)."""
    suite, name = envs.parse_id(env_id)
    if suite not in STEPPERS:
        raise ValueError(f"no suite stepper for {suite!r} (have {sorted(STEPPERS)})")
    return STEPPERS[suite](name, num_envs)


def _own_program(stepper: Stepper, steps: int) -> Callable:
    """``run(key, state) -> (state, total reward)``: ``steps`` random steps in one scan."""
    def run(key, state):
        def body(carry, key):
            state, total = carry
            state, reward = stepper.step(state, key)
            return (state, total + jnp.sum(jnp.asarray(reward, jnp.float32))), None

        carry = (state, jnp.zeros((), jnp.float32))
        return jax.lax.scan(body, carry, jax.random.split(key, steps))[0]

    return jax.jit(run)


def own_stepping(env_id: str, num_envs: int = 256, steps: int = 200,
                 repeats: int = 5) -> dict[str, Any]:
    """(a) Random-policy steps/s of ``env_id`` through its suite's own API and auto-reset
    (module docstring). Returns ``compile_s``, ``run_s``, ``steps_per_s``, ``num_envs``,
    ``steps``, ``api`` and `common.benchmark`'s other timings."""
    stepper = suite_stepper(env_id, num_envs)
    key_reset, key_run = jax.random.split(jax.random.PRNGKey(0))
    state = jax.block_until_ready(jax.jit(stepper.reset)(key_reset))
    res = common.benchmark(_own_program(stepper, steps), key_run, state, repeats=repeats)
    return _record(res, num_envs, steps) | {"api": stepper.api}


# ------------------------------------------------------------------------------------------
# (b) through purea2c
# ------------------------------------------------------------------------------------------


def _purea2c_block(env: Any, num_envs: int, length: int, carry: tuple, key: jax.Array):
    """``length`` steps of purea2c's vectorised env, their noise drawn before the scan."""
    spec = env.action_spec
    masked = isinstance(env.observation_spec, dict) and ACTION_MASK in env.observation_spec
    key_act, key_env = jax.random.split(key)
    noise = (draw_action_noise(key_act, spec, (length, num_envs), masked),
             envs.draw_step_noise(key_env, env, num_envs, length))

    def step(carry, noise):
        state, total = carry
        action_noise, env_noise = noise
        action = action_from_noise(action_noise, envs.split_mask(state.obs)[1])
        state, res = envs.step_with(env_noise, env, state, envs.env_action(spec, action))
        return (state, total + jnp.sum(res.reward)), None

    return jax.lax.scan(step, carry, noise)[0]


def _purea2c_program(env: Any, num_envs: int, steps: int, chunk: int) -> Callable:
    """``run(key, state) -> (state, total reward)``: ``steps`` steps in blocks of ``chunk``
    (a scan over the blocks, then one shorter block for the remainder)."""
    num_blocks, rest = divmod(steps, chunk)

    def run(key, state):
        keys = jax.random.split(key, num_blocks + 1)
        carry = (state, jnp.zeros((), jnp.float32))
        if num_blocks:
            carry = jax.lax.scan(
                lambda c, k: (_purea2c_block(env, num_envs, chunk, c, k), None),
                carry, keys[:num_blocks])[0]
        if rest:
            carry = _purea2c_block(env, num_envs, rest, carry, keys[-1])
        return carry

    return jax.jit(run)


def default_chunk(env_id: str) -> int:
    """Steps per block of drawn noise: the ``rollout_length`` training uses for ``env_id``
    (its preset's, else `Config`'s default)."""
    config = (purea2c.Config.preset(env_id) if env_id in PRESETS
              else purea2c.Config(env=env_id))
    return config.rollout_length


def purea2c_stepping(env_id: str, num_envs: int = 256, steps: int = 200, repeats: int = 5,
                     chunk: int | None = None) -> dict[str, Any]:
    """(b) Random-policy steps/s of ``purea2c.envs.make(env_id)`` stepped as training steps
    it (module docstring); ``chunk``: steps per block of drawn noise (default
    `default_chunk`). Returns ``compile_s``, ``run_s``, ``steps_per_s``, ``num_envs``,
    ``steps``, ``chunk`` and `common.benchmark`'s other timings."""
    chunk = chunk or default_chunk(env_id)
    chunk = min(chunk, steps)
    env = envs.make(env_id)
    key_reset, key_run = jax.random.split(jax.random.key(0))
    state = jax.block_until_ready(
        jax.jit(lambda k: envs.reset(k, env, num_envs))(key_reset))
    res = common.benchmark(_purea2c_program(env, num_envs, steps, chunk), key_run, state,
                           repeats=repeats)
    return _record(res, num_envs, steps) | {"chunk": chunk}


# ------------------------------------------------------------------------------------------
# both
# ------------------------------------------------------------------------------------------


def _record(res: dict[str, Any], num_envs: int, steps: int) -> dict[str, Any]:
    """`common.benchmark`'s result without the program's output, plus the rate."""
    res = {k: v for k, v in res.items() if k != "output"}
    return res | {"num_envs": num_envs, "steps": steps,
                  "steps_per_s": num_envs * steps / res["run_s"]}


def measure(env_id: str, num_envs: int = 256, steps: int = 200,
            repeats: int = 5) -> dict[str, dict[str, Any]]:
    """``{"own": own_stepping(...), "purea2c": purea2c_stepping(...)}`` of ``env_id``."""
    return {"own": own_stepping(env_id, num_envs, steps, repeats),
            "purea2c": purea2c_stepping(env_id, num_envs, steps, repeats)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", default=list(DEFAULT_IDS),
                        help="env ids (default: SUITE_PRESETS' and CartPole-v1)")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for env_id in args.ids:
        res = measure(env_id, args.num_envs, args.steps, args.repeats)
        own, through = res["own"], res["purea2c"]
        print(f"{env_id}: own {own['steps_per_s']:,.0f} steps/s (compile "
              f"{own['compile_s']:.1f} s); through purea2c {through['steps_per_s']:,.0f} "
              f"steps/s (compile {through['compile_s']:.1f} s, chunk {through['chunk']}); "
              f"ratio {through['steps_per_s'] / own['steps_per_s']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
