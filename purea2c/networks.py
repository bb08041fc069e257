"""Policy and value networks (flax linen) and the torso synchronisation of coax.

pi and v are two separate modules with their own parameter trees, each a `Torso` followed by
a head. The torso is an MLP for vector observations and a small CNN (convolutions, then the
MLP) for image-like observations ``(H, W, C)`` or ``(H, W)``; `Config.torso` chooses, "auto"
by the observation's rank. The policy head emits a `distributions.Categorical` (discrete
actions) or a `distributions.Gaussian` (Box actions: a state-dependent mean, a
state-independent log-std parameter initialised to ``log_std_init``). The value head emits a
scalar ``[...]``. Both torsos have the same architecture, so their parameters can be averaged
("sync").

Every module takes observations with any leading batch shape: ``[..., *obs_shape]``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from purea2c import distributions
from purea2c.envs.core import ArraySpec, split_mask


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


class PatchConv(nn.Module):
    """A 'SAME', stride-1 2-D convolution computed as patches @ kernel (im2col).

    Same maths and parameter layout as ``nn.Conv`` (kernel ``[k, k, C_in, C_out]``, bias
    ``[C_out]``), but one matrix product instead of a convolution op: under ``vmap`` over
    seeds XLA turns a convolution with batched weights into a grouped convolution, which its
    CPU backend runs several times slower than the batched matrix product used here.
    ``[B, H, W, C_in] -> [B, H, W, C_out]``.
    """

    features: int
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        _, h, w, c = x.shape
        kernel = self.param("kernel", scaled_init(np.sqrt(2.0)), (k, k, c, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        lo = (k - 1) // 2
        padded = jnp.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
        patches = jnp.concatenate(
            [padded[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)], axis=-1)
        return patches @ kernel.reshape(k * k * c, self.features) + bias.reshape(1, 1, 1, -1)


def torso_kind(torso: str, obs_shape: Sequence[int]) -> str:
    """Resolves ``Config.torso`` for one observation array: "auto" is "cnn" for rank-3
    observations ``(H, W, C)`` and "mlp" otherwise (vectors, and any other shape, flattened);
    "cnn" takes ``(H, W)`` and ``(H, W, C)`` arrays (other ranks are flattened into the MLP)."""
    if torso == "auto":
        return "cnn" if len(obs_shape) == 3 else "mlp"
    if torso == "cnn" and len(obs_shape) not in (2, 3):
        return "mlp"
    return torso


def _conv_stack(x: jax.Array, channels: Sequence[int], kernel_size: int, act: Any,
                prefix: str) -> jax.Array:
    """``[B, H, W(, C)] -> [B, H, W, channels[-1]]``: 'SAME' convolutions, each activated."""
    if x.ndim == 3:
        x = x[..., None]
    for i, c in enumerate(channels):
        x = act(PatchConv(c, kernel_size, name=f"{prefix}{i}")(x))
    return x


class Torso(nn.Module):
    """``[..., *obs_shape] -> [..., features]`` (or a pytree of observation arrays).

    "mlp": the observation is flattened, then Dense layers of ``hidden_sizes``.
    "cnn": ``(H, W[, C])`` goes through 'SAME' convolutions of ``cnn_channels`` (kernel
    ``cnn_kernel_size``, stride 1; MinAtar's network), is flattened, then the Dense layers.
    A pytree observation (``leaves`` set: its leaves' shapes and kinds, in tree order): each
    "cnn" leaf goes through its own convolutions, the results and every other leaf are
    flattened and concatenated, then the Dense layers.
    Weights at the scale of orthogonal(sqrt 2).
    """

    obs_shape: tuple[int, ...]
    kind: str  # "mlp" or "cnn"
    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    cnn_channels: Sequence[int] = (16,)
    cnn_kernel_size: int = 3
    obs_bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    leaves: tuple[tuple[tuple[int, ...], str], ...] | None = None  # pytree observations

    @nn.compact
    def __call__(self, obs: Any) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        if self.leaves is not None:
            return self._dense(self._pytree_features(obs, act), act)
        obs_ndim = len(self.obs_shape)
        batch_shape = obs.shape[: obs.ndim - obs_ndim]
        x = obs.reshape((math.prod(batch_shape), *self.obs_shape)).astype(jnp.float32)
        if self.obs_bounds is not None:
            center, half = bounds_affine(self.obs_bounds, self.obs_shape)
            x = (x - center[None]) / half[None]
        if self.kind == "cnn":
            x = _conv_stack(x, self.cnn_channels, self.cnn_kernel_size, act, "conv_")
        x = self._dense(x.reshape((x.shape[0], -1)), act)
        return x.reshape((*batch_shape, x.shape[-1]))

    def _pytree_features(self, obs: Any, act: Any) -> jax.Array:
        """``[..., F]``: each leaf's features (convolved or not), flattened, concatenated."""
        leaves = jax.tree.leaves(obs)
        if len(leaves) != len(self.leaves):
            raise ValueError(f"observation with {len(leaves)} arrays; the torso was built "
                             f"for {len(self.leaves)}")
        shape0, _ = self.leaves[0]
        batch_shape = leaves[0].shape[: leaves[0].ndim - len(shape0)]
        parts = []
        for i, (x, (shape, kind)) in enumerate(zip(leaves, self.leaves)):
            x = x.reshape((math.prod(batch_shape), *shape)).astype(jnp.float32)
            if kind == "cnn":
                x = _conv_stack(x, self.cnn_channels, self.cnn_kernel_size, act, f"conv{i}_")
            parts.append(x.reshape((x.shape[0], -1)))
        x = jnp.concatenate(parts, axis=-1)
        return x.reshape((*batch_shape, x.shape[-1]))

    def _dense(self, x: jax.Array, act: Any) -> jax.Array:
        """``[..., F] -> [..., hidden_sizes[-1]]``."""
        for i, width in enumerate(self.hidden_sizes):
            x = nn.Dense(width, kernel_init=scaled_init(np.sqrt(2.0)), name=f"dense_{i}")(x)
            x = act(x)
        return x


def bounds_affine(bounds: tuple[tuple[float, ...], tuple[float, ...]],
                  obs_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(center, half_width)`` that map each observation dimension with finite bounds
    (``|bound| < 1e6``) onto [-1, 1]; other dimensions pass unchanged (0, 1)."""
    low = np.asarray(bounds[0], np.float64).reshape(obs_shape)
    high = np.asarray(bounds[1], np.float64).reshape(obs_shape)
    finite = (np.abs(low) < 1e6) & (np.abs(high) < 1e6) & (high > low)
    low, high = np.where(finite, low, -1.0), np.where(finite, high, 1.0)
    return (0.5 * (high + low)).astype(np.float32), (0.5 * (high - low)).astype(np.float32)


class TorsoSpec(NamedTuple):
    """The torso's hyperparameters (hashable, so modules built from it are static)."""

    obs_shape: tuple[int, ...]
    kind: str
    hidden_sizes: tuple[int, ...]
    activation: str
    cnn_channels: tuple[int, ...]
    cnn_kernel_size: int
    obs_bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    leaves: tuple[tuple[tuple[int, ...], str], ...] | None = None

    def build(self) -> Torso:
        return Torso(self.obs_shape, self.kind, self.hidden_sizes, self.activation,
                     self.cnn_channels, self.cnn_kernel_size, self.obs_bounds, self.leaves,
                     name="torso")


class PolicyNet(nn.Module):
    """``[..., *obs_shape]`` -> `Categorical` (logits ``[..., A]``) or `Gaussian`
    (mean and log-std ``[..., d]``)."""

    torso: TorsoSpec
    discrete: bool
    num_actions: int  # A, or the action dimension d
    log_std_init: float = 0.0
    exploration: str = "gaussian"  # Box actions: "gaussian" or "gsde"

    @nn.compact
    def __call__(self, obs: Any) -> distributions.Distribution:
        obs, mask = split_mask(obs)
        x = self.torso.build()(obs)
        out = nn.Dense(self.num_actions, kernel_init=scaled_init(0.01), name="head")(x)
        if self.discrete:
            return distributions.masked(distributions.Categorical(out), mask)
        if self.exploration == "gsde":
            # The exploration matrix's log-std, one per (feature, action dimension), as
            # Stable-Baselines3's gSDE with full_std; its features are not learned through it.
            feature_log_std = self.param("log_std", nn.initializers.constant(self.log_std_init),
                                         (x.shape[-1], self.num_actions))
            features = jax.lax.stop_gradient(x)
            return distributions.StateDependentGaussian(
                out, distributions.gsde_log_std(features, feature_log_std), features,
                feature_log_std)
        log_std = self.param("log_std", nn.initializers.constant(self.log_std_init),
                             (self.num_actions,))
        return distributions.Gaussian(out, jnp.broadcast_to(log_std, out.shape))


class ValueNet(nn.Module):
    """State value: ``[..., *obs_shape]`` -> ``v(s)`` of shape ``[...]``."""

    torso: TorsoSpec

    @nn.compact
    def __call__(self, obs: Any) -> jax.Array:
        x = self.torso.build()(split_mask(obs)[0])
        return nn.Dense(1, kernel_init=scaled_init(1.0), name="head")(x)[..., 0]


class Networks(NamedTuple):
    """The two modules; ``pi.apply(params_pi, obs)`` and ``v.apply(params_v, obs)``."""

    pi: PolicyNet
    v: ValueNet


def make_networks(obs_spec: Any, discrete: bool, num_actions: int, *,
                  hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh",
                  torso: str = "auto", cnn_channels: Sequence[int] = (16,),
                  cnn_kernel_size: int = 3, log_std_init: float = 0.0,
                  obs_bounds: tuple[Any, Any] | None = None,
                  exploration: str = "gaussian") -> Networks:
    """The pi and v modules for observations ``obs_spec``: a shape, an `ArraySpec`, or a
    pytree of them (then `split_mask`'s rule takes an action mask out, and `torso_kind`
    decides per leaf). ``obs_bounds=(low, high)`` (array observations): each observation
    dimension with finite bounds is rescaled onto [-1, 1] before the torso (see
    `bounds_affine`). ``exploration="gsde"``: pi emits a `StateDependentGaussian` (Box
    actions)."""
    obs_spec = split_mask(obs_spec)[0]
    leaves = None
    if isinstance(obs_spec, (tuple, list)) and all(isinstance(d, (int, np.integer))
                                                   for d in obs_spec):
        obs_shape = tuple(int(d) for d in obs_spec)
    elif isinstance(obs_spec, ArraySpec):
        obs_shape = tuple(obs_spec.shape)
    else:
        obs_shape = ()
        leaves = tuple((tuple(leaf.shape), torso_kind(torso, leaf.shape))
                       for leaf in jax.tree.leaves(obs_spec))
        if obs_bounds is not None:
            raise ValueError("obs_bounds (Config.scale_obs) needs an array observation, "
                             "not a pytree")
    if obs_bounds is not None:
        obs_bounds = tuple(tuple(float(v) for v in np.broadcast_to(
            np.asarray(b, np.float64), obs_shape).reshape(-1)) for b in obs_bounds)
    kind = "mlp" if leaves is not None else torso_kind(torso, obs_shape)
    spec = TorsoSpec(obs_shape, kind, tuple(hidden_sizes), activation,
                     tuple(cnn_channels), int(cnn_kernel_size), obs_bounds, leaves)
    return Networks(PolicyNet(spec, discrete, num_actions, float(log_std_init), exploration),
                    ValueNet(spec))


def sync_torsos(pi_params: Any, v_params: Any, weight: jax.Array) -> tuple[Any, Any]:
    """coax's ``sync_shared_params``: both torsos become ``weight*pi + (1-weight)*v``.

    Only the ``torso`` sub-tree is touched; the heads (and pi's log-std) stay as they are.
    """
    mean = jax.tree.map(lambda p, v: weight * p + (1.0 - weight) * v,
                        pi_params["params"]["torso"], v_params["params"]["torso"])
    return _with_torso(pi_params, mean), _with_torso(v_params, mean)


def _with_torso(params: Any, torso: Any) -> Any:
    inner = dict(params["params"])
    inner["torso"] = torso
    return {**params, "params": inner}
