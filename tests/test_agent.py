"""The agent builder: optimizers and learning-rate schedules, the networks' input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purea2c import agent, normalization
from purea2c.config import Config

CFG = Config(num_envs=4, rollout_length=8, n_step=3, buffer_capacity=64, batch_size=16,
             num_passes=2, total_timesteps=32 * 10)  # 10 iterations x 4 updates = 40 updates


def _lr_after(config, lr, steps):
    """The step size the updater applies at update ``steps``: for a gradient of 1 on one
    parameter (no clipping at this size) Adam's first steps move by lr; read it from the
    schedule by driving plain SGD with it instead."""
    opt = agent.make_optimizer(config, lr)
    params = jnp.zeros(())
    state = opt.init(params)
    moves = []
    for _ in range(steps):
        updates, state = opt.update(jnp.ones(()), state, params)
        moves.append(float(updates))
    return np.asarray(moves)


def test_adam_constant_moves_by_the_learning_rate():
    moves = _lr_after(CFG, 1e-3, 3)
    np.testing.assert_allclose(moves, -1e-3, rtol=1e-4)  # Adam's normalised step: -lr


def test_linear_schedule_reaches_zero_at_the_end_of_the_run():
    config = CFG.replace(lr_schedule="linear")
    total = config.num_iterations * config.updates_per_iteration
    assert total == 40
    moves = _lr_after(config, 1e-3, total + 2)
    # Adam's step is -lr(t) for a constant gradient; lr(t) = 1e-3 * (1 - t / 40).
    expected = -1e-3 * np.maximum(1 - np.arange(total + 2) / total, 0)
    np.testing.assert_allclose(moves, expected, rtol=1e-4, atol=1e-9)


def test_rmsprop_follows_the_pytorch_convention():
    # v_1 = (1 - 0.99) g^2; step = lr g / (sqrt(v_1) + 1e-5) with g = 2:
    # sqrt(0.01 * 4) = 0.2 -> 1e-3 * 2 / 0.20001.
    config = CFG.replace(optimizer="rmsprop", max_grad_norm=100.0)
    opt = agent.make_optimizer(config, 1e-3)
    updates, _ = opt.update(jnp.full((), 2.0), opt.init(jnp.zeros(())), jnp.zeros(()))
    np.testing.assert_allclose(float(updates), -1e-3 * 2 / (0.2 + 1e-5), rtol=1e-5)


def test_learning_rate_stays_sweepable_under_a_schedule():
    config = CFG.replace(lr_schedule="linear", optimizer="rmsprop")
    f = jax.vmap(lambda lr: agent.make_optimizer(config, lr).update(
        jnp.ones(()), agent.make_optimizer(config, lr).init(jnp.zeros(())), jnp.zeros(()))[0])
    moves = f(jnp.array([1e-3, 2e-3]))
    np.testing.assert_allclose(moves[1], 2 * moves[0], rtol=1e-5)


def test_network_input_normalises_only_when_asked():
    obs = jnp.array([[1.0, 2.0], [3.0, 6.0]])
    moments = normalization.update(normalization.init_moments((2,)), obs)
    params = agent.Params(pi=None, v=None, obs_norm=moments)
    assert agent.network_input(CFG, params, obs) is obs
    z = agent.network_input(CFG.replace(normalize_obs=True), params, obs)
    np.testing.assert_allclose(z, [[-1.0, -1.0], [1.0, 1.0]], atol=1e-4)


@pytest.mark.parametrize("field, value", [("optimizer", "sgd"), ("lr_schedule", "cosine"),
                                          ("exploration", "ou"), ("sde_sample_freq", -1),
                                          ("obs_clip", 0.0), ("reward_clip", -1.0)])
def test_new_fields_are_validated(field, value):
    with pytest.raises(ValueError, match=field):
        CFG.replace(**{field: value})


def test_gsde_needs_box_actions():
    with pytest.raises(ValueError, match="exploration"):
        CFG.replace(exploration="gsde")  # CartPole: discrete


def test_the_agent_object_is_the_training_program():
    """`Agent(config)`'s pure init / run / train are what `purea2c.init` / `run` / `train`
    compile: equal results, and init then two runs equal one train."""
    import purea2c

    key = jax.random.key(3)
    a = agent.Agent(CFG)
    plain = jax.jit(a.train)(key)
    public = purea2c.train(key, CFG)
    for x, y in zip(jax.tree.leaves((plain.state.params, plain.metrics)),
                    jax.tree.leaves((public.state.params, public.metrics))):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                   rtol=1e-5, atol=1e-6)
    run = jax.jit(a.run, static_argnums=1)  # CFG's 10 iterations as 5 + 5: one program
    state, first = run(jax.jit(a.init)(key), 5)
    state, rest = run(state, CFG.num_iterations - 5)
    np.testing.assert_array_equal(np.concatenate([first.env_steps, rest.env_steps]),
                                  plain.metrics.env_steps)


@pytest.mark.parametrize("field, table", [("optimizer", agent.OPTIMIZERS),
                                          ("lr_schedule", agent.LR_SCHEDULES),
                                          ("policy_objective", agent.POLICY_OBJECTIVES)])
def test_every_choice_of_a_variant_has_one_entry_in_its_table(field, table):
    for choice in table:
        built = agent.Agent(CFG.replace(**{field: choice}))
        assert built.config == CFG.replace(**{field: choice})
    with pytest.raises(ValueError, match=field):
        CFG.replace(**{field: "no-such-choice"})
