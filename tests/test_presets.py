"""Every preset builds, compiles and trains one iteration with finite metrics (a smoke test:
the presets' learning is measured by benchmarks/learning.py and tests/test_learning.py;
evaluation of each kind of policy is covered by tests/test_training.py and test_learning.py)."""

import dataclasses

import jax
import numpy as np
import pytest

import purea2c
from purea2c import envs

ISSUE_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1",
              "MountainCarContinuous-v0", "Breakout-MinAtar", "Asterix-MinAtar",
              "SpaceInvaders-MinAtar", "Freeway-MinAtar", "Catch-bsuite"]


def test_every_listed_environment_has_a_preset():
    assert set(ISSUE_ENVS) <= set(purea2c.Config.preset_names())


# Presets whose program is traced here (shapes, dtypes and the env's code through the whole
# program) but compiled and run elsewhere, each compile taking 6-50 s on 2 cores: the reason
# for each. benchmarks/learning.py trains them all.
TRACED_ONLY = {
    "brax/hopper": "inverted_pendulum's settings and adapter (that preset runs below); its "
                   "program alone takes ~50 s of XLA compilation",
    "Asterix-MinAtar": "Breakout-MinAtar's settings and network (that preset runs below)",
    "Freeway-MinAtar": "Breakout-MinAtar's settings and network",
    "SpaceInvaders-MinAtar": "Breakout-MinAtar's settings and network",
    "MountainCar-v0": "trained by tests/test_learning.py",
    "MountainCarContinuous-v0": "trained by tests/test_learning.py",
    "navix/Navix-Empty-5x5-v0": "trained by tests/test_learning.py",
    "navix/Navix-Empty-6x6-v0": "Navix-Empty-5x5's settings and env code, a larger grid",
    "xminigrid/MiniGrid-Empty-6x6": "MiniGrid-Empty-5x5's settings and env code (that preset "
                                    "runs below), a larger grid",
}


def assert_buffer_holds_the_env_kind_of_action(config, action):
    """The buffer holds actions of the env's kind: one int per slot for Discrete, [d] floats
    for Box (``action``: an array or its shape-dtype struct)."""
    spec = envs.make(config.env).action_spec
    if spec.discrete:
        assert action.dtype == np.int32 and action.shape == (config.buffer_capacity,)
    else:
        assert action.dtype == np.float32 and action.shape[1:] == (spec.num_actions,)


@pytest.mark.parametrize("name", sorted(TRACED_ONLY))
def test_traced_only_preset_builds_its_training_program(name):
    preset = purea2c.Config.preset(name)
    config = preset.replace(total_timesteps=preset.steps_per_iteration)
    out = jax.eval_shape(purea2c.train, jax.random.key(0), config)
    assert out.metrics.env_steps.shape == (1,)
    assert_buffer_holds_the_env_kind_of_action(config, out.state.buffer.data.action)


@pytest.mark.parametrize("name", [n for n in purea2c.Config.preset_names()
                                  if n not in TRACED_ONLY])
def test_preset_runs_one_iteration(name):
    preset = purea2c.Config.preset(name)
    config = preset.replace(total_timesteps=preset.steps_per_iteration)
    state, metrics = purea2c.train(jax.random.key(0), config)  # one program: init + run
    for field in ("value_loss", "policy_loss", "entropy", "td_error", "pi_grad_norm",
                  "v_grad_norm", "kl"):
        value = np.asarray(getattr(metrics, field))
        assert value.shape == (1,) and np.isfinite(value).all(), (field, value)
    assert int(metrics.env_steps[0]) == config.steps_per_iteration
    stored = state.buffer.data.action
    assert_buffer_holds_the_env_kind_of_action(config, stored)
    # Where the env gives an action mask, every action taken was an allowed one (slots never
    # written hold an all-False mask and are left out).
    mask = envs.split_mask(state.buffer.data.obs)[1]
    if mask is not None:
        mask = np.asarray(mask)
        written = mask.any(-1)
        assert written.sum() > 0
        assert mask[np.arange(len(stored)), np.asarray(stored)][written].all()


def test_preset_overrides_and_unknown_name():
    c = purea2c.Config.preset("Pendulum-v1", gamma=0.9)
    assert c.gamma == 0.9 and c.env == "Pendulum-v1"
    with pytest.raises(ValueError, match="unknown preset 'Pong'.*CartPole-v1"):
        purea2c.Config.preset("Pong")
    # Presets differ from the defaults only through Config's own validated fields.
    for name in purea2c.Config.preset_names():
        fields = {f.name for f in dataclasses.fields(purea2c.Config)}
        assert set(purea2c.config.PRESETS[name]) <= fields
