"""Bad input through the Python API: every mistake is one ValueError that names the field and
the rule, raised before anything is compiled; and a fuzz: any Config that validation accepts
trains an iteration. (The command line's bad inputs are in test_cli.py.)"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import purea2c
from purea2c.config import INT32_MAX, Config

_compiles: list[str] = []


def _on_event(event: str, duration: float, **kwargs) -> None:
    if event.endswith("backend_compile_duration"):
        _compiles.append(event)


jax.monitoring.register_event_duration_secs_listener(_on_event)
Config()  # validation's own first look at CartPole-v1 (cached) is not the bad input's

_FIELDS = [f.name for f in dataclasses.fields(Config)]

# Every field refuses None.
_NONE = [(name, None, "") for name in _FIELDS]

_BAD = [
    # ints: type, range, int32 limits
    *[(f, v, rule) for f in ("num_envs", "rollout_length", "n_step", "buffer_capacity",
                             "batch_size", "num_passes", "total_timesteps", "cnn_kernel_size")
      for v, rule in ((0, ">= 1"), (1.5, "Python int"), ("8", "Python int"), (True, "Python int"),
                      (INT32_MAX + 1, "int32"))],
    ("sde_sample_freq", -1, ">= 0"),
    ("sde_sample_freq", 2.0, "Python int"),
    ("total_timesteps", 10**12, "int32"),
    # traced numbers
    *[(f, v, "must be") for f in ("gamma", "reward_scale", "pi_learning_rate", "v_learning_rate",
                                  "entropy_coef", "max_grad_norm", "huber_delta", "target_tau",
                                  "ppo_epsilon", "sync_weight", "obs_clip", "reward_clip")
      for v in (float("nan"), float("inf"), "0.1", (0.1,), -1.0)],
    ("gamma", 1.01, "[0, 1]"),
    ("target_tau", 0.0, "(0, 1]"),
    ("gamma", 1 + 2j, "real number"),
    # choices and flags
    *[(f, v, "one of") for f in ("torso", "activation", "shared_torso", "value_loss",
                                 "policy_objective", "optimizer", "lr_schedule", "exploration")
      for v in ("", "Adam ", 3)],
    *[(f, v, "bool") for f in ("clear_buffer", "scale_obs", "normalize_obs", "normalize_reward",
                               "use_target_network", "skip_nonfinite") for v in (1, "true")],
    ("hidden_sizes", (64, -1), "tuple of ints"),
    ("hidden_sizes", (2**33,), "tuple of ints"),
    ("hidden_sizes", "64", "tuple of ints"),
    ("hidden_sizes", (1_000_000_000,), "GiB"),
    ("cnn_channels", (0,), "tuple of ints"),
    ("log_std_init", "0", "finite"),
    ("log_std_init", float("nan"), "finite"),
    ("env", "MNISTBandit-bsuite", "downloads"),
    ("env", "Pong", "unknown environment"),
    ("env", 3, "gymnax 1.x API"),
]


@pytest.mark.parametrize("field, value, rule", _NONE + _BAD,
                         ids=[f"{f}={v!r}" for f, v, _ in _NONE + _BAD])
def test_bad_config_value_is_one_clear_error_before_compiling(field, value, rule):
    before = len(_compiles)
    with pytest.raises(ValueError) as err:
        Config(**{field: value})
    msg = str(err.value)
    assert f"Config.{field}=" in msg and rule in msg, msg
    assert "\n" not in msg
    assert len(_compiles) == before


def test_count_of_bad_inputs_tried():
    assert len(_NONE) + len(_BAD) >= 150


@pytest.mark.parametrize("kwargs, rule", [
    (dict(num_episodes=0), "num_episodes=0"),
    (dict(num_episodes=-3), "num_episodes=-3"),
    (dict(max_steps=0), "max_steps=0"),
])
def test_evaluate_refuses_bad_counts(kwargs, rule):
    config = Config()
    params = jax.eval_shape(purea2c.init, jax.random.key(0), config).params
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
    with pytest.raises(ValueError, match=rule):
        purea2c.evaluate(jax.random.key(0), config, params, **kwargs)


def test_memory_refusal_names_the_estimate_and_the_machine():
    with pytest.raises(ValueError, match=r"at least [\d,.]+ GiB .*this machine has [\d,.]+ GiB"):
        purea2c.config.check_memory(Config(hidden_sizes=(4096, 4096)), 100_000)
    purea2c.config.check_memory(Config(), 1024)  # 1,024 default seeds fit


def test_jax_placeholders_still_flatten():
    # vmap over a whole config's traced leaves builds sentinel-filled copies of its
    # structure, which validation lets through.
    stacked = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 2), Config())
    out = jax.vmap(lambda c: c.gamma * 2)(stacked)
    assert out.shape == (2,)


# --- fuzz ------------------------------------------------------------------------------------

@st.composite
def _configs(draw):
    """Mostly consistent field values (so that many are accepted and trained), sometimes with
    one field replaced by an arbitrary value of the wrong kind or range."""
    env = draw(st.sampled_from(["CartPole-v1", "Pendulum-v1", "Catch-bsuite"]))
    num_envs, rollout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    steps = num_envs * rollout
    passes = draw(st.integers(1, 2))
    capacity = draw(st.integers(steps, 40))
    values = dict(
        env=env, num_envs=num_envs, rollout_length=rollout, n_step=draw(st.integers(1, 5)),
        buffer_capacity=capacity, batch_size=draw(st.integers(1, min(capacity, passes * steps))),
        num_passes=passes, clear_buffer=draw(st.booleans()),
        hidden_sizes=draw(st.sampled_from([(8,), (4, 4)])),
        activation=draw(st.sampled_from(["tanh", "relu", "gelu", "silu"])),
        torso=draw(st.sampled_from(["auto", "mlp", "cnn"] if env == "Catch-bsuite"
                                   else ["auto", "mlp"])),
        value_loss=draw(st.sampled_from(["mse", "huber"])),
        policy_objective=draw(st.sampled_from(["vanilla_pg", "ppo_clip"])),
        shared_torso=draw(st.sampled_from(["none", "sync"])),
        optimizer=draw(st.sampled_from(["adam", "rmsprop"])),
        lr_schedule=draw(st.sampled_from(["constant", "linear"])),
        exploration=draw(st.sampled_from(["gaussian", "gsde"] if env == "Pendulum-v1"
                                         else ["gaussian"])),
        sde_sample_freq=draw(st.integers(0, 3)),
        normalize_obs=draw(st.booleans()), normalize_reward=draw(st.booleans()),
        use_target_network=draw(st.booleans()),
        gamma=draw(st.floats(0.0, 1.0)), pi_learning_rate=draw(st.floats(1e-6, 1.0)),
        entropy_coef=draw(st.floats(0.0, 0.1)), max_grad_norm=draw(st.floats(1e-3, 10.0)),
        obs_clip=draw(st.floats(0.1, 20.0)), reward_scale=draw(st.floats(1e-3, 1e3)),
    )
    if draw(st.integers(0, 3)) == 0:  # one field gets an arbitrary value
        field = draw(st.sampled_from(sorted(values)))
        values[field] = draw(st.one_of(st.none(), st.integers(-3, 3), st.floats(),
                                       st.text(max_size=3), st.tuples(st.integers(-1, 4))))
    return values


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(_configs())
def test_any_accepted_config_trains_an_iteration(values):
    try:
        config = Config(**values)
    except ValueError as err:
        assert str(err).startswith("Config.") and " is invalid: " in str(err)
        return
    config = config.replace(total_timesteps=config.steps_per_iteration)
    out = purea2c.train(jax.random.key(0), config)
    assert int(out.state.iteration) == 1
    assert np.asarray(out.metrics.finite).shape == (1,)
