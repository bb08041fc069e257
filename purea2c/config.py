"""Training configuration: static fields, traced hyperparameters, validation, presets.

`Config` is a frozen dataclass registered as a pytree. Fields that fix shapes, loop lengths
or code paths are *static* (they live in the pytree's tree definition, so changing one
recompiles); numeric hyperparameters are *traced* leaves, so ``jax.vmap`` over
``config.replace(pi_learning_rate=lr)`` sweeps them inside one compiled program.

Every field is checked when a `Config` is built from concrete values; a bad value raises
``ValueError`` naming the field, the value and the rule. Traced values (inside ``jit`` or
``vmap``) cannot be checked and are passed through. Derived quantities are properties.
Which rule each field obeys is ``_validate``, here; the checks themselves, with those of
the environment and of memory, are `purea2c.config_checks`'s.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from flax import struct

from purea2c import config_checks as _checks
from purea2c.config_checks import INT32_MAX, check_memory, machine_memory
from purea2c.presets import PRESETS

__all__ = ["Config", "INT32_MAX", "check_memory", "machine_memory"]

_ACTIVATIONS = ("tanh", "relu", "gelu", "silu")
_VALUE_LOSSES = ("mse", "huber")
_POLICY_OBJECTIVES = ("vanilla_pg", "ppo_clip")
_SHARED_TORSO = ("none", "sync")
_TORSOS = ("auto", "mlp", "cnn")
_OPTIMIZERS = ("adam", "rmsprop")
_LR_SCHEDULES = ("constant", "linear")
_EXPLORATION = ("gaussian", "gsde")


def _static(default: Any, doc: str) -> Any:
    return struct.field(pytree_node=False, default=default, metadata={"doc": doc})


def _traced(default: float, doc: str) -> Any:
    return struct.field(pytree_node=True, default=default, metadata={"doc": doc})


@struct.dataclass
class Config:
    """Everything that defines one training run. See each field's ``doc`` metadata."""

    # --- environment (static) ---
    env: Any = _static(
        "CartPole-v1",
        "Environment: an id 'suite/name' (gymnax/, brax/, jumanji/, craftax/, navix/, "
        "xminigrid/; a bare name is gymnax's, e.g. 'CartPole-v1'), an object that follows "
        "the purea2c.envs protocol, or an object with the gymnax 1.x API. `purea2c envs` "
        "lists the suites and their ids.",
    )
    env_kwargs: Any = _static(
        (),
        "Keyword arguments of the environment (a dict, kept as sorted (name, value) pairs), "
        "e.g. {'episode_length': 1000} for Brax or {'max_steps_in_episode': 200} for gymnax.",
    )
    num_envs: int = _static(16, "Environments stepped in parallel (vmap) per agent.")
    resets_per_step: int = _static(
        0,
        "Fresh episodes drawn per env step for the envs that end one there (0: one per env, "
        "exact). Fewer pays off where a reset costs many steps (Craftax): the k-th env to "
        "end at a step takes the k-th, and more than this many ending at once share starts "
        "(see purea2c.envs.vector).",
    )
    rollout_length: int = _static(
        16, "Env steps per environment per iteration, before the learning phase."
    )
    total_timesteps: int = _static(
        98_304, "Env steps of the whole run (all environments); rounded down to whole iterations."
    )
    # --- n-step returns and replay (static) ---
    n_step: int = _static(16, "n of the n-step bootstrapped return G = R(n) + I(n) v(S_t+n).")
    buffer_capacity: int = _static(256, "Ring-buffer capacity in transitions.")
    batch_size: int = _static(256, "Transitions per minibatch update.")
    num_passes: int = _static(
        1,
        "Updates per iteration = num_passes * rollout_length * num_envs / batch_size "
        "(rounded down): how many times, on average, each new transition is sampled.",
    )
    clear_buffer: bool = _static(
        True, "Empty the buffer after each learning phase (on-policy, coax's A2C schedule)."
    )
    # --- networks (static) ---
    torso: str = _static(
        "auto",
        f"Torso type, one of {_TORSOS}: 'auto' is 'cnn' for image-like observations (H, W, C) "
        "and 'mlp' otherwise; 'cnn' also takes (H, W) observations.",
    )
    hidden_sizes: tuple[int, ...] = _static(
        (64, 64), "Widths of the torso's dense hidden layers (after the convolutions for 'cnn')."
    )
    activation: str = _static("tanh", f"Torso activation, one of {_ACTIVATIONS}.")
    scale_obs: bool = _static(
        False,
        "Rescale each observation dimension whose bounds (the env's observation space) are "
        "finite onto [-1, 1] before the torso; other dimensions pass unchanged.",
    )
    normalize_obs: bool = _static(
        False,
        "Running observation normalisation (VecNormalize's rule): the mean and variance of "
        "every observation seen, kept in params.obs_norm and updated after each iteration from "
        "its rollout (an exact merge of batch moments); networks see "
        "clip((obs - mean) / sqrt(var + 1e-8), +-obs_clip) in acting, learning, evaluate and "
        "make_policy alike.",
    )
    normalize_reward: bool = _static(
        False,
        "Running reward scaling (VecNormalize's rule): rewards are divided by the running std "
        "of each env's discounted return (discount gamma), then clipped to +-reward_clip.",
    )
    cnn_channels: tuple[int, ...] = _static(
        (16,), "Output channels of the CNN torso's convolutions ('SAME' padding, stride 1)."
    )
    cnn_kernel_size: int = _static(3, "Kernel size of the CNN torso's convolutions.")
    log_std_init: float = _static(
        0.0,
        "Box actions: initial value of the Gaussian policy's log-std, a state-independent "
        "parameter per action dimension (learned with pi).",
    )
    exploration: str = _static(
        "gaussian",
        f"Box actions, one of {_EXPLORATION}: 'gaussian' draws independent noise exp(log_std) * eps "
        "at every step; 'gsde' is generalized state-dependent exploration (Raffin et al. 2021): "
        "the action is mean(s) + phi(s) @ theta, phi(s) the policy's last hidden features "
        "(gradient stopped) and theta [features, d] ~ N(0, exp(log_std)^2) redrawn every "
        "sde_sample_freq steps. log pi is the exact density of that action given s, "
        "N(mean(s), phi(s)^2 @ exp(2 log_std)).",
    )
    sde_sample_freq: int = _static(
        0, "gSDE: redraw the exploration matrix every this many env steps; 0 = once per rollout "
           "(at the start of each iteration's rollout).",
    )
    shared_torso: str = _static(
        "none",
        "'sync': after each update, the torso parameters of pi and v are replaced by their "
        "weighted mean (coax's sync_shared_params); 'none': independent torsos.",
    )
    # --- objectives (static) ---
    value_loss: str = _static(
        "mse", "TD loss of v: 'mse' (0.5 td^2) or 'huber' (td_error then clipped to +-huber_delta)."
    )
    policy_objective: str = _static(
        "vanilla_pg",
        "'vanilla_pg': -td_error * log pi(A|S); 'ppo_clip': clipped ratio to the stored behaviour "
        "log-probability.",
    )
    use_target_network: bool = _static(
        False, "Bootstrap from a Polyak-averaged copy of v (rate target_tau) instead of v itself."
    )
    # --- optimizers (static) ---
    optimizer: str = _static(
        "adam",
        f"Updater of pi and of v, one of {_OPTIMIZERS}: optax Adam (its defaults), or RMSprop "
        "with Stable-Baselines3 A2C's convention (PyTorch's: decay 0.99, eps 1e-5 added "
        "outside the square root, accumulator starting at 0).",
    )
    lr_schedule: str = _static(
        "constant",
        f"Learning-rate schedule of both updaters, one of {_LR_SCHEDULES}: 'linear' decays "
        "each learning rate to 0 over the run's updates (num_iterations * "
        "updates_per_iteration).",
    )
    skip_nonfinite: bool = _static(
        True,
        "Skip (and count in metrics.skipped_updates) any update whose losses, gradient norms "
        "or new parameters are not finite, keeping the parameters before it.",
    )
    max_skipped_share: float = _static(
        0.5,
        "The command line stops a run as diverged (exit status 3) after a chunk in which a "
        "seed skipped more than this share of its updates (metrics.skipped_updates), in "
        "(0, 1]; checked on the host between chunks, the compiled program does not read it "
        "(purea2c.divergence is the same check in Python).",
    )
    # --- traced hyperparameters ---
    gamma: float = _traced(0.99, "Discount factor, in [0, 1].")
    reward_scale: float = _traced(
        1.0, "Rewards are multiplied by this before learning (episode returns stay raw), > 0."
    )
    pi_learning_rate: float = _traced(1e-3, "Adam learning rate of the policy, > 0.")
    v_learning_rate: float = _traced(1e-2, "Adam learning rate of the value function, > 0.")
    entropy_coef: float = _traced(0.01, "Weight beta of the entropy bonus, >= 0.")
    max_grad_norm: float = _traced(
        1.0, "Global-norm gradient clip (optax.clip_by_global_norm) of each updater, > 0."
    )
    huber_delta: float = _traced(1.0, "delta of the huber TD loss, > 0 (used when value_loss='huber').")
    target_tau: float = _traced(
        0.1, "Polyak rate of the target network, in (0, 1] (used when use_target_network)."
    )
    obs_clip: float = _traced(
        10.0, "Normalised observations are clipped to +-obs_clip, > 0 (used when normalize_obs).")
    reward_clip: float = _traced(
        10.0, "Normalised rewards are clipped to +-reward_clip, > 0 (used when normalize_reward).")
    ppo_epsilon: float = _traced(0.2, "PPO clip range, > 0 (used when policy_objective='ppo_clip').")
    sync_weight: float = _traced(
        0.5, "Weight of pi's torso in the synced mean, in [0, 1] (used when shared_torso='sync')."
    )

    def __post_init__(self) -> None:
        if not _checks.is_placeholder(self):  # a dict or pairs -> sorted pairs (idempotent)
            object.__setattr__(self, "env_kwargs", _checks.kwargs_pairs(self.env_kwargs))
        _validate(self)

    def canonical(self) -> "Config":
        """The same config with every concrete traced hyperparameter as a float32 array
        (a Python float, a numpy or JAX scalar of any float or int type, a 0-d array alike),
        so a program compiled for one of them serves them all: `purea2c.train`, `init` and
        `run` call it before their compiled program sees the config. Tracers and batched
        values (a vmapped sweep) pass unchanged."""
        def cast(value: Any) -> Any:
            if isinstance(value, jax.core.Tracer) or np.ndim(value) != 0:
                return value
            return np.asarray(value, np.float32)  # on the host: no conversion program

        return self.replace(**{name: cast(getattr(self, name))
                               for name in _checks.traced_fields(Config)})

    # --- derived quantities ---
    @property
    def steps_per_iteration(self) -> int:
        """Env steps per iteration over all environments."""
        return self.num_envs * self.rollout_length

    @property
    def num_iterations(self) -> int:
        """Whole iterations in ``total_timesteps``."""
        return self.total_timesteps // self.steps_per_iteration

    @property
    def updates_per_iteration(self) -> int:
        """Minibatch updates of each network per iteration."""
        return self.num_passes * self.steps_per_iteration // self.batch_size

    def memory_estimate(self, num_seeds: int = 1) -> int:
        """A lower estimate, in bytes, of the memory the training program holds for
        ``num_seeds`` vmapped seeds: parameters with their gradients, optimizer moments and
        target copy, the ring buffer, the tracer windows, a rollout's noise and observations,
        and the activations of one minibatch. Validation refuses a config whose estimate
        exceeds the machine's memory."""
        obs_shape, num_actions = _checks.env_shapes(self)
        return num_seeds * _checks.memory_estimate(self, obs_shape, num_actions)

    # --- presets ---
    @classmethod
    def coax_a2c(cls, **overrides: Any) -> "Config":
        """The settings of coax's A2C example on CartPole: one env, n=5, gamma=0.9, a buffer of
        256 sampled in ~4 passes of batch 32 and then cleared, Adam 1e-3 (pi) / 2e-3 (v),
        huber TD loss, synced torso. Same as ``Config.preset("coax_a2c")``."""
        return cls.preset("coax_a2c", **overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Config":
        """The named preset (see `Config.preset_names`), with ``overrides`` applied.

        Presets are tuned settings per environment (keyed by the gymnax name) plus
        ``"coax_a2c"``, the settings of coax's A2C example."""
        if not isinstance(name, str) or name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; presets: {cls.preset_names()}")
        settings = dict(PRESETS[name])
        settings.update(overrides)
        return cls(**settings)

    @staticmethod
    def preset_names() -> list[str]:
        """Names accepted by `Config.preset`."""
        return sorted(PRESETS)

    @classmethod
    def fields_doc(cls) -> dict[str, str]:
        """Field name -> its documentation, for help texts."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------


def _validate(cfg: Config) -> None:
    for field in ("num_envs", "rollout_length", "n_step", "buffer_capacity", "batch_size",
                  "num_passes", "total_timesteps"):
        _checks.check_int(cfg, field, 1)
    _checks.check_int(cfg, "resets_per_step", 0)
    for field in ("clear_buffer", "use_target_network", "scale_obs", "normalize_obs",
                  "normalize_reward", "skip_nonfinite"):
        if not isinstance(getattr(cfg, field), bool):
            _checks.fail(field, getattr(cfg, field), "must be a bool")
    hs = cfg.hidden_sizes
    if not isinstance(hs, tuple) or not all(
        isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= INT32_MAX for h in hs
    ):
        _checks.fail("hidden_sizes", hs,
                     f"must be a tuple of ints >= 1 and <= {INT32_MAX:,} (e.g. (64, 64))")
    _checks.check_choice(cfg, "activation", _ACTIVATIONS)
    _checks.check_choice(cfg, "torso", _TORSOS)
    cc = cfg.cnn_channels
    if not isinstance(cc, tuple) or len(cc) == 0 or not all(
        isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= INT32_MAX for c in cc
    ):
        _checks.fail("cnn_channels", cc, f"must be a non-empty tuple of ints >= 1 and <= "
                                         f"{INT32_MAX:,} (e.g. (16,))")
    _checks.check_int(cfg, "cnn_kernel_size", 1)
    if isinstance(cfg.max_skipped_share, bool) or not isinstance(
            cfg.max_skipped_share, (int, float)) or not 0 < cfg.max_skipped_share <= 1:
        _checks.fail("max_skipped_share", cfg.max_skipped_share, "must be a Python float in (0, 1]")
    if isinstance(cfg.log_std_init, bool) or not isinstance(cfg.log_std_init, (int, float)) \
            or not np.isfinite(cfg.log_std_init):
        _checks.fail("log_std_init", cfg.log_std_init, "must be a finite Python float")
    _checks.check_choice(cfg, "shared_torso", _SHARED_TORSO)
    _checks.check_choice(cfg, "optimizer", _OPTIMIZERS)
    _checks.check_choice(cfg, "lr_schedule", _LR_SCHEDULES)
    _checks.check_choice(cfg, "exploration", _EXPLORATION)
    _checks.check_int(cfg, "sde_sample_freq", 0)
    _checks.check_choice(cfg, "value_loss", _VALUE_LOSSES)
    _checks.check_choice(cfg, "policy_objective", _POLICY_OBJECTIVES)
    if cfg.exploration == "gsde" and len(hs) == 0:
        _checks.fail("exploration", cfg.exploration,
                     "'gsde' needs hidden features (hidden_sizes non-empty)")
    if cfg.shared_torso == "sync" and len(hs) == 0 and cfg.torso != "cnn":
        _checks.fail("shared_torso", cfg.shared_torso,
                     "'sync' needs a torso (hidden_sizes non-empty)")

    # Relations between static fields.
    if cfg.batch_size > cfg.buffer_capacity:
        _checks.fail("batch_size", cfg.batch_size,
                     f"must be <= buffer_capacity ({cfg.buffer_capacity})")
    if cfg.num_envs > cfg.buffer_capacity:
        _checks.fail("num_envs", cfg.num_envs,
                     f"must be <= buffer_capacity ({cfg.buffer_capacity}): each env step adds "
                     "num_envs transitions to the ring buffer at once")
    if cfg.clear_buffer and cfg.buffer_capacity < cfg.steps_per_iteration:
        _checks.fail("buffer_capacity", cfg.buffer_capacity,
                     "must be >= num_envs * rollout_length "
                     f"({cfg.steps_per_iteration}) when clear_buffer=True, or transitions of an "
                     "iteration would be overwritten before they are learned from")
    if cfg.total_timesteps < cfg.steps_per_iteration:
        _checks.fail("total_timesteps", cfg.total_timesteps,
                     f"must be >= num_envs * rollout_length ({cfg.steps_per_iteration}), one "
                     "iteration")
    if cfg.num_passes * cfg.steps_per_iteration < cfg.batch_size:
        _checks.fail("num_passes", cfg.num_passes,
                     "num_passes * num_envs * rollout_length must be >= batch_size, "
                     "or an iteration makes no update")

    # Traced hyperparameters (checked when concrete).
    _checks.check_float(cfg, "gamma", "must be in [0, 1]", lambda x: (x >= 0) & (x <= 1))
    for field in ("pi_learning_rate", "v_learning_rate", "max_grad_norm", "huber_delta",
                  "ppo_epsilon", "reward_scale", "obs_clip", "reward_clip"):
        _checks.check_float(cfg, field, "must be > 0", lambda x: x > 0)
    _checks.check_float(cfg, "entropy_coef", "must be >= 0", lambda x: x >= 0)
    _checks.check_float(cfg, "target_tau", "must be in (0, 1]", lambda x: (x > 0) & (x <= 1))
    _checks.check_float(cfg, "sync_weight", "must be in [0, 1]", lambda x: (x >= 0) & (x <= 1))

    _checks.check_env(cfg)
    _checks.check_memory(cfg, 1)
