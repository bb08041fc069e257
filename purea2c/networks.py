"""Policy and value networks (flax linen) and the torso synchronisation of coax.

pi and v are two separate modules with their own parameter trees, each a torso (MLP for
vector observations) followed by a head: logits ``[..., A]`` for pi, a scalar ``[...]`` for v.
Both torsos have the same architecture, so their parameters can be averaged ("sync").
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

def scaled_init(gain: float) -> nn.initializers.Initializer:
    """Truncated normal with variance ``gain**2 / fan_in``: the scale of an orthogonal init of
    that gain, without its QR decomposition. (A batched QR under ``vmap`` over seeds can
    deadlock XLA's CPU thread pool in jaxlib 0.10: its LAPACK kernel waits on tasks queued
    behind itself.)"""
    return nn.initializers.variance_scaling(gain**2, "fan_in", "truncated_normal")


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


class MLPTorso(nn.Module):
    """Dense layers at the scale of orthogonal(sqrt 2); ``[..., D] -> [..., hidden[-1]]``."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for i, width in enumerate(self.hidden_sizes):
            x = nn.Dense(width, kernel_init=scaled_init(np.sqrt(2.0)),
                         name=f"dense_{i}")(x)
            x = act(x)
        return x


class PolicyNet(nn.Module):
    """Categorical policy: observation ``[..., D]`` -> logits ``[..., num_actions]``."""

    num_actions: int
    hidden_sizes: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = MLPTorso(self.hidden_sizes, self.activation, name="torso")(obs)
        return nn.Dense(self.num_actions, kernel_init=scaled_init(0.01),
                        name="head")(x)


class ValueNet(nn.Module):
    """State value: observation ``[..., D]`` -> ``v(s)`` of shape ``[...]``."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = MLPTorso(self.hidden_sizes, self.activation, name="torso")(obs)
        return nn.Dense(1, kernel_init=scaled_init(1.0), name="head")(x)[..., 0]


class Networks(NamedTuple):
    """The two modules; ``pi.apply(params_pi, obs)`` and ``v.apply(params_v, obs)``."""

    pi: PolicyNet
    v: ValueNet


def make_networks(num_actions: int, hidden_sizes: Sequence[int], activation: str) -> Networks:
    hidden = tuple(hidden_sizes)
    return Networks(PolicyNet(num_actions, hidden, activation), ValueNet(hidden, activation))


def sync_torsos(pi_params: Any, v_params: Any, weight: jax.Array) -> tuple[Any, Any]:
    """coax's ``sync_shared_params``: both torsos become ``weight*pi + (1-weight)*v``.

    Only the ``torso`` sub-tree is touched; the heads stay as they are.
    """
    mean = jax.tree.map(lambda p, v: weight * p + (1.0 - weight) * v,
                        pi_params["params"]["torso"], v_params["params"]["torso"])
    return _with_torso(pi_params, mean), _with_torso(v_params, mean)


def _with_torso(params: Any, torso: Any) -> Any:
    inner = dict(params["params"])
    inner["torso"] = torso
    return {**params, "params": inner}
