"""Tests for the A2C losses (`purea2c.objectives`): hand-derived values, analytic gradients,
stop-gradients, and the link between the value loss and the td_error handed to the policy."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purea2c import objectives

RTOL = 1e-5
ATOL = 1e-6


def f32(x):
    return jnp.asarray(x, jnp.float32)


# --------------------------------------------------------------------------------------
# td_target


def test_td_target_hand_values():
    # G = R + I * v_next:  1 + 0.5*4 = 3;  2 + 0*100 = 2 (terminated);  -1 + 0.25*(-2) = -1.5.
    g = objectives.td_target(f32([1.0, 2.0, -1.0]), f32([0.5, 0.0, 0.25]),
                             f32([4.0, 100.0, -2.0]))
    np.testing.assert_allclose(g, [3.0, 2.0, -1.5], rtol=RTOL)
    assert g.shape == (3,)


def test_td_target_stops_gradient():
    def f(reward, discount, v_next):
        return jnp.sum(objectives.td_target(reward, discount, v_next))

    grads = jax.grad(f, argnums=(0, 1, 2))(f32([1.0, 2.0]), f32([0.5, 0.9]), f32([3.0, 4.0]))
    for g in grads:
        np.testing.assert_array_equal(g, 0.0)


# --------------------------------------------------------------------------------------
# value_loss and td_error_signal


def test_value_loss_mse_hand_values():
    # mean(0.5 td^2) over td = [1, -2, 3]: 0.5 * (1 + 4 + 9) / 3 = 7/3.
    loss = objectives.value_loss(f32([1.0, -2.0, 3.0]), "mse", f32(1.0))
    np.testing.assert_allclose(loss, 7.0 / 3.0, rtol=RTOL)


def test_value_loss_huber_inside_delta():
    # delta = 2, |td| <= 2 everywhere: 0.5 td^2 -> 0.5 * (0.25 + 1 + 4) / 3 = 0.875.
    loss = objectives.value_loss(f32([0.5, -1.0, 2.0]), "huber", f32(2.0))
    np.testing.assert_allclose(loss, 0.875, rtol=RTOL)


def test_value_loss_huber_outside_delta():
    # delta = 1: td = 3 -> 1*(3 - 0.5) = 2.5;  td = -5 -> 1*(5 - 0.5) = 4.5;
    # td = 0.5 -> 0.5*0.25 = 0.125.  mean = (2.5 + 4.5 + 0.125) / 3 = 7.125 / 3 = 2.375.
    loss = objectives.value_loss(f32([3.0, -5.0, 0.5]), "huber", f32(1.0))
    np.testing.assert_allclose(loss, 2.375, rtol=RTOL)


def test_value_loss_huber_is_continuous_at_delta():
    delta = 1.5
    inside = objectives.value_loss(f32([delta - 1e-4]), "huber", f32(delta))
    outside = objectives.value_loss(f32([delta + 1e-4]), "huber", f32(delta))
    # Both are ~ 0.5 * delta^2 = 1.125.
    np.testing.assert_allclose([inside, outside], [1.125, 1.125], rtol=1e-3)


def test_huber_with_large_delta_equals_mse():
    td = f32(np.random.default_rng(0).normal(size=16))
    np.testing.assert_allclose(objectives.value_loss(td, "huber", f32(1e6)),
                               objectives.value_loss(td, "mse", f32(1.0)), rtol=RTOL)


def test_td_error_signal_hand_values():
    td = f32([-3.0, -0.5, 0.0, 0.7, 4.0])
    # huber clips to [-delta, delta] = [-1, 1]; mse is the identity.
    np.testing.assert_allclose(objectives.td_error_signal(td, "huber", f32(1.0)),
                               [-1.0, -0.5, 0.0, 0.7, 1.0], rtol=RTOL)
    np.testing.assert_allclose(objectives.td_error_signal(td, "mse", f32(1.0)),
                               [-3.0, -0.5, 0.0, 0.7, 4.0], rtol=RTOL)


@pytest.mark.parametrize("kind", ["mse", "huber"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_td_error_signal_is_minus_loss_derivative_in_v(kind, seed):
    # td = G - v(S); per sample dL_i/dv_i = -signal_i, and value_loss is a mean over B, so
    # d value_loss / d v = -signal / B.
    rng = np.random.default_rng(seed)
    b = 32
    g = f32(rng.normal(scale=3.0, size=b))
    v = f32(rng.normal(scale=3.0, size=b))
    delta = f32(rng.uniform(0.5, 2.0))
    grad_v = jax.grad(lambda v_: objectives.value_loss(g - v_, kind, delta))(v)
    signal = objectives.td_error_signal(g - v, kind, delta)
    np.testing.assert_allclose(-b * grad_v, signal, rtol=RTOL, atol=ATOL)
    if kind == "huber":  # the draw really hits both branches
        assert np.any(np.abs(g - v) > delta) and np.any(np.abs(g - v) < delta)


@pytest.mark.parametrize("fn", [objectives.value_loss, objectives.td_error_signal])
def test_unknown_kind_raises(fn):
    with pytest.raises(ValueError):
        fn(f32([1.0]), "l1", f32(1.0))


# --------------------------------------------------------------------------------------
# vanilla_pg_loss


def test_vanilla_pg_loss_hand_value():
    # -mean(adv * logp) - beta * mean(H):
    #   adv*logp = [2*(-1), -1*(-0.5)] = [-2, 0.5], mean = -0.75 -> 0.75;
    #   beta*mean(H) = 0.1 * (1 + 3)/2 = 0.2;  loss = 0.75 - 0.2 = 0.55.
    loss = objectives.vanilla_pg_loss(f32([-1.0, -0.5]), f32([2.0, -1.0]), f32([1.0, 3.0]),
                                      f32(0.1))
    np.testing.assert_allclose(loss, 0.55, rtol=RTOL)


def test_vanilla_pg_gradient_matches_analytic_categorical():
    # With logp = log_softmax(logits)[a]: d/dlogits of -mean(adv * logp) is
    # -adv_i * (onehot(a_i) - softmax(logits_i)) / B for sample i.
    rng = np.random.default_rng(3)
    b, num_actions = 5, 4
    logits = f32(rng.normal(size=(b, num_actions)))
    actions = jnp.asarray(rng.integers(0, num_actions, size=b), jnp.int32)
    adv = f32(rng.normal(size=b))

    def loss(lg):
        logp = jax.nn.log_softmax(lg, axis=-1)[jnp.arange(b), actions]
        return objectives.vanilla_pg_loss(logp, adv, jnp.zeros((b,)), f32(0.0))

    grad = jax.grad(loss)(logits)
    lg = np.asarray(logits, np.float64)
    probs = np.exp(lg - lg.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    onehot = np.eye(num_actions)[np.asarray(actions)]
    expected = -np.asarray(adv, np.float64)[:, None] * (onehot - probs) / b
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


def test_vanilla_pg_entropy_gradient():
    # d loss / d H_i = -beta / B.
    grad = jax.grad(lambda h: objectives.vanilla_pg_loss(f32([-1.0, -2.0]), f32([1.0, 1.0]),
                                                         h, f32(0.3)))(f32([0.5, 0.5]))
    np.testing.assert_allclose(grad, [-0.15, -0.15], rtol=RTOL)


def test_vanilla_pg_stops_gradient_through_td_error():
    grad = jax.grad(lambda td: objectives.vanilla_pg_loss(f32([-1.0, -2.0]), td,
                                                          f32([0.0, 0.0]), f32(0.0)))(
        f32([1.0, -3.0]))
    np.testing.assert_array_equal(grad, 0.0)


# --------------------------------------------------------------------------------------
# ppo_clip_loss


def test_ppo_equals_vanilla_surrogate_at_ratio_one():
    rng = np.random.default_rng(4)
    logp = f32(-rng.uniform(0.1, 2.0, size=8))
    adv = f32(rng.normal(size=8))
    ent = f32(rng.uniform(0.0, 1.0, size=8))
    ppo = objectives.ppo_clip_loss(logp, logp, adv, ent, f32(0.05), f32(0.2))
    # ratio = 1: loss = -mean(adv) - beta mean(H).
    np.testing.assert_allclose(ppo, -np.mean(adv) - 0.05 * np.mean(ent), rtol=RTOL, atol=ATOL)
    # At ratio 1, d ratio / d logp = 1, so the gradient in logp is the vanilla one: -adv / B.
    grad_ppo = jax.grad(lambda lp: objectives.ppo_clip_loss(lp, logp, adv, ent, f32(0.05),
                                                            f32(0.2)))(logp)
    grad_pg = jax.grad(lambda lp: objectives.vanilla_pg_loss(lp, adv, ent, f32(0.05)))(logp)
    np.testing.assert_allclose(grad_ppo, grad_pg, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad_ppo, -np.asarray(adv) / 8, rtol=RTOL, atol=ATOL)


def test_ppo_clip_hand_values():
    eps = 0.2
    # log ratio ln 2 -> ratio 2 (clipped to 1.2); ln 0.5 -> ratio 0.5 (clipped to 0.8).
    logp = f32([np.log(2.0), np.log(2.0), np.log(0.5), np.log(0.5)])
    behaviour = f32([0.0, 0.0, 0.0, 0.0])
    adv = f32([1.0, -1.0, 1.0, -1.0])
    # min(rho A, clip(rho) A):
    #   rho=2,   A=+1: min(2, 1.2) = 1.2        rho=2,   A=-1: min(-2, -1.2) = -2
    #   rho=0.5, A=+1: min(0.5, 0.8) = 0.5      rho=0.5, A=-1: min(-0.5, -0.8) = -0.8
    # loss = -mean(1.2, -2, 0.5, -0.8) = -(-1.1)/4 = 0.275.
    loss = objectives.ppo_clip_loss(logp, behaviour, adv, f32(np.zeros(4)), f32(0.0), f32(eps))
    np.testing.assert_allclose(loss, 0.275, rtol=RTOL)

    grad = jax.grad(lambda lp: objectives.ppo_clip_loss(lp, behaviour, adv, f32(np.zeros(4)),
                                                        f32(0.0), f32(eps)))(logp)
    # Clipped on the side that would increase the objective -> no gradient (items 0 and 3).
    # Unclipped items: d/dlogp of -rho A / B = -rho A / 4:  item 1: -2*(-1)/4 = 0.5;
    #   item 2: -0.5*1/4 = -0.125.
    np.testing.assert_allclose(grad, [0.0, 0.5, -0.125, 0.0], rtol=RTOL, atol=ATOL)


def test_ppo_stops_gradient_through_td_error():
    logp = f32([-0.5, -1.0])
    grad_td = jax.grad(lambda td: objectives.ppo_clip_loss(logp, logp + 0.1, td, f32([0., 0.]),
                                                           f32(0.0), f32(0.2)))(f32([1.0, -2.0]))
    np.testing.assert_array_equal(grad_td, 0.0)


# --------------------------------------------------------------------------------------
# kl_to_behaviour


def test_kl_zero_when_equal():
    logp = f32([-0.3, -1.2, -2.0])
    np.testing.assert_allclose(objectives.kl_to_behaviour(logp, logp), 0.0, atol=1e-7)


def test_kl_formula_and_non_negative():
    rng = np.random.default_rng(5)
    logp = rng.normal(size=64)
    blogp = rng.normal(size=64)
    kl = objectives.kl_to_behaviour(f32(logp), f32(blogp))
    lr = logp.astype(np.float32).astype(np.float64) - blogp.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(kl, np.mean(np.exp(lr) - 1.0 - lr), rtol=1e-4)
    # Each term (rho - 1) - log rho >= 0 (as x - 1 >= log x).
    for i in range(8):
        term = objectives.kl_to_behaviour(f32(logp[i:i + 1]), f32(blogp[i:i + 1]))
        assert float(term) >= 0.0


def test_kl_is_exact_kl_when_actions_follow_behaviour():
    # pi_b = [1/2, 1/4, 1/4] and a batch whose actions have exactly those frequencies
    # (a0, a0, a1, a2): the mean of (rho - 1) - log rho is E_b[...] = KL(pi_b || pi).
    pi_b = np.array([0.5, 0.25, 0.25])
    pi = np.array([0.2, 0.3, 0.5])
    actions = np.array([0, 0, 1, 2])
    kl = objectives.kl_to_behaviour(f32(np.log(pi[actions])), f32(np.log(pi_b[actions])))
    np.testing.assert_allclose(kl, np.sum(pi_b * np.log(pi_b / pi)), rtol=1e-5)


class ObjectiveVariants(chex.TestCase):
    """Each loss jitted and not equals its numpy formula; ranks and shapes checked at the
    boundary."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_losses_match_numpy(self):
        rng = np.random.default_rng(0)
        r, d, v, td, lp, lpb, ent = (rng.normal(size=6).astype(np.float32) for _ in range(7))
        chex.assert_trees_all_close(self.variant(objectives.td_target)(r, d, v), r + d * v,
                                    rtol=1e-6)
        chex.assert_trees_all_close(
            self.variant(objectives.value_loss, static_argnums=1)(td, "mse", 1.0),
            np.mean(0.5 * td**2), rtol=1e-6)
        chex.assert_trees_all_close(
            self.variant(objectives.vanilla_pg_loss)(lp, td, ent, 0.1),
            -np.mean(td * lp) - 0.1 * np.mean(ent), rtol=1e-5)
        ratio = np.exp(lp - lpb)
        ppo = -np.mean(np.minimum(ratio * td, np.clip(ratio, 0.8, 1.2) * td)) - 0.1 * ent.mean()
        chex.assert_trees_all_close(
            self.variant(objectives.ppo_clip_loss)(lp, lpb, td, ent, 0.1, 0.2), ppo,
            rtol=1e-5)
        chex.assert_trees_all_close(self.variant(objectives.kl_to_behaviour)(lp, lpb),
                                    np.mean(np.expm1(lp - lpb) - (lp - lpb)), rtol=1e-5)

    def test_mismatched_shapes_are_refused(self):
        with pytest.raises(AssertionError):
            objectives.td_target(jnp.zeros(4), jnp.zeros(4), jnp.zeros((4, 1)))
        with pytest.raises(AssertionError):
            objectives.vanilla_pg_loss(jnp.zeros(4), jnp.zeros(3), jnp.zeros(4), 0.0)
        with pytest.raises(AssertionError):
            objectives.value_loss(jnp.zeros((4, 1)), "mse", 1.0)
