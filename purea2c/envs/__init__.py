"""The environment seam: one protocol, one adapter module per suite, one auto-reset.

    env = purea2c.envs.make("brax/inverted_pendulum", episode_length=1000)
    obs, state = env.reset(key)                      # one env, pure, no auto-reset
    step = env.step(key, state, action)              # EnvStep(obs, state, reward,
                                                     #         terminated, truncated)
    env.observation_spec, env.action_spec, env.max_episode_steps

Modules:

- `core`: the protocol (`EnvStep`, `ArraySpec`, `ActionSpec`), the action mask rule, Box
  clipping (`env_action`);
- `registry`: ``"suite/name"`` ids -> adapters (`make`), the optional extras, `check`;
- `vector`: ``num_envs`` copies under ``vmap`` with purea2c's auto-reset and episode
  statistics (`reset`, `step`, `step_with`, `draw_step_noise`);
- one adapter per suite, the only modules that import it: `gymnax`, `brax`, `jumanji`,
  `craftax`, `navix`, `xminigrid`.
"""

from purea2c.envs.core import (ACTION_MASK, ActionSpec, ArraySpec, Env, EnvError, EnvStep,
                               box_spec, env_action, split_mask)
from purea2c.envs.registry import SUITES, check, describe, ids, installed, make, parse_id
from purea2c.envs.vector import (EpisodeStats, StepNoise, StepResult, VecEnvState,
                                 draw_step_noise, reset, step, step_noise_from_keys,
                                 step_with)

__all__ = [
    "ACTION_MASK", "ActionSpec", "ArraySpec", "Env", "EnvError", "EnvStep", "EpisodeStats",
    "SUITES", "StepNoise", "StepResult", "VecEnvState", "box_spec", "check", "describe",
    "draw_step_noise", "env_action", "ids", "installed", "make", "parse_id", "reset",
    "split_mask", "step", "step_noise_from_keys", "step_with",
]
