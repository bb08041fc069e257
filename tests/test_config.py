"""Config: static vs traced fields, validation messages, derived values, presets."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

import purea2c
from purea2c.config import Config


def test_defaults_validate_and_derive():
    c = Config()
    assert c.steps_per_iteration == c.num_envs * c.rollout_length
    assert c.num_iterations == c.total_timesteps // c.steps_per_iteration
    assert c.updates_per_iteration == c.num_passes * c.steps_per_iteration // c.batch_size
    assert c.updates_per_iteration >= 1


def test_static_and_traced_fields_split():
    leaves, treedef = jax.tree.flatten(Config())
    traced = {"gamma", "pi_learning_rate", "v_learning_rate", "entropy_coef", "max_grad_norm",
              "huber_delta", "target_tau", "ppo_epsilon", "sync_weight", "reward_scale",
              "obs_clip", "reward_clip"}
    assert len(leaves) == len(traced)
    for f in dataclasses.fields(Config):
        assert f.metadata.get("pytree_node", True) == (f.name in traced), f.name
        assert f.metadata["doc"], f"field {f.name} has no doc"
    # Changing a static field changes the tree structure (and so recompiles) ...
    assert jax.tree.structure(Config(n_step=3)) != treedef
    # ... changing a traced one does not.
    assert jax.tree.structure(Config(gamma=0.5)) == treedef


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().gamma = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("field, value, words", [
    ("num_envs", 0, "must be >= 1"),
    ("num_envs", 2.0, "Python int"),
    ("rollout_length", -3, "must be >= 1"),
    ("n_step", 0, "must be >= 1"),
    ("gamma", 1.5, "[0, 1]"),
    ("gamma", -0.1, "[0, 1]"),
    ("gamma", float("nan"), "[0, 1]"),
    ("pi_learning_rate", 0.0, "> 0"),
    ("v_learning_rate", -1e-3, "> 0"),
    ("entropy_coef", -0.01, ">= 0"),
    ("max_grad_norm", 0.0, "> 0"),
    ("huber_delta", 0.0, "> 0"),
    ("target_tau", 0.0, "(0, 1]"),
    ("ppo_epsilon", -0.2, "> 0"),
    ("sync_weight", 1.2, "[0, 1]"),
    ("gamma", "0.9", "number"),
    ("activation", "sigmoid", "one of"),
    ("value_loss", "l1", "one of"),
    ("policy_objective", "a3c", "one of"),
    ("shared_torso", "yes", "one of"),
    ("hidden_sizes", [64, 64], "tuple of ints"),
    ("hidden_sizes", (64, 0), "tuple of ints"),
    ("clear_buffer", 1, "bool"),
    ("scale_obs", "yes", "bool"),
    ("torso", "resnet", "one of"),
    ("cnn_channels", (), "non-empty tuple"),
    ("cnn_channels", (16, -1), "non-empty tuple"),
    ("cnn_kernel_size", 0, "must be >= 1"),
    ("log_std_init", float("inf"), "finite"),
    ("reward_scale", 0.0, "> 0"),
])
def test_invalid_field_raises_naming_field_value_rule(field, value, words):
    with pytest.raises(ValueError) as err:
        Config(**{field: value})
    msg = str(err.value)
    assert f"Config.{field}=" in msg and repr(value) in msg and words in msg


def test_relations_between_fields():
    with pytest.raises(ValueError, match=r"Config.batch_size=512 .*buffer_capacity \(256\)"):
        Config(batch_size=512)
    with pytest.raises(ValueError, match="Config.buffer_capacity=.*clear_buffer"):
        Config(buffer_capacity=128, batch_size=64)  # 16 envs x 16 steps = 256 > 128
    Config(buffer_capacity=128, batch_size=64, clear_buffer=False)  # fine without clearing
    with pytest.raises(ValueError, match="Config.total_timesteps=100 .*one iteration"):
        Config(total_timesteps=100)
    with pytest.raises(ValueError, match="Config.num_envs=.*buffer_capacity"):
        Config(num_envs=64, rollout_length=1, buffer_capacity=32, batch_size=32)


def test_replace_validates_too():
    with pytest.raises(ValueError, match="Config.gamma"):
        Config().replace(gamma=2.0)


def test_unknown_env_lists_registered():
    with pytest.raises(ValueError) as err:
        Config(env="CartPole-v0")
    msg = str(err.value)
    assert "unknown environment" in msg and "'CartPole-v1'" in msg and "'Acrobot-v1'" in msg


def test_every_registered_discrete_or_box_env_is_accepted():
    import gymnax

    accepted = []
    for name in ["CartPole-v1", "Pendulum-v1", "MountainCarContinuous-v0", "Breakout-MinAtar",
                 "Catch-bsuite", "Reacher-misc", "FrozenLake-misc"]:
        assert name in gymnax.registered_envs
        accepted.append(Config(env=name).env)
    assert len(accepted) == 7


class _TupleActionEnv:
    """CartPole with its action space replaced by a Tuple space."""

    def __init__(self):
        import gymnax

        self._env, self.default_params = gymnax.make("CartPole-v1")
        self.reset, self.step = self._env.reset, self._env.step
        self.observation_space = self._env.observation_space

    def action_space(self, params):
        from gymnax.environments import spaces

        d = self._env.action_space(params)
        return spaces.Tuple([d, d])


def test_unsupported_action_space_is_named():
    with pytest.raises(ValueError, match="Config.env=.*action space is not supported.*neither "
                                         "Discrete nor Box"):
        Config(env=_TupleActionEnv())


def test_cnn_torso_needs_image_observations():
    with pytest.raises(ValueError, match=r"Config.torso='cnn' .*\(H, W\).*CartPole-v1 has \(4,\)"):
        Config(env="CartPole-v1", torso="cnn")
    Config(env="Catch-bsuite", torso="cnn")  # (10, 5): a channel axis is added
    Config(env="Breakout-MinAtar", torso="mlp")  # flattened


def test_env_object_with_gymnax_api():
    import gymnax

    env, _ = gymnax.make("Acrobot-v1")
    assert Config(env=env).env is env
    with pytest.raises(ValueError, match="gymnax 1.x API"):
        Config(env=object())


def test_traced_values_pass_through_vmap():
    lrs = jnp.array([1e-4, 1e-3])
    out = jax.vmap(lambda lr: Config().replace(pi_learning_rate=lr).pi_learning_rate * 2)(lrs)
    assert out.shape == (2,)


def test_coax_preset_matches_the_example_settings():
    c = Config.coax_a2c()
    assert (c.n_step, c.gamma, c.buffer_capacity, c.batch_size) == (5, 0.9, 256, 32)
    assert (c.pi_learning_rate, c.v_learning_rate) == (1e-3, 2e-3)
    assert (c.value_loss, c.shared_torso, c.clear_buffer) == ("huber", "sync", True)
    # "when the buffer is full: ~4 passes of batch 32, then clear": 4 * 256 / 32 updates.
    assert c.updates_per_iteration == 32
    assert Config.coax_a2c(gamma=0.95).gamma == 0.95


def test_public_api():
    for name in ("Config", "train", "init", "run", "evaluate", "TrainResult"):
        assert hasattr(purea2c, name)
