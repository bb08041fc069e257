"""Presets: tuned field overrides of `Config`'s defaults, per environment id (a bare gymnax
name or ``"suite/name"``), plus ``"coax_a2c"``, the settings of coax's A2C example.

``Config.preset(name, **overrides)`` builds one. Each entry says where its settings come
from: the sweeps of ``benchmarks/tune_presets.py`` (results/tune_presets.md) or a peer's
published settings.
"""

from __future__ import annotations

from typing import Any

# Grid worlds (Navix, XLand-MiniGrid) and Jumanji's Snake: MinAtar's network and schedule (a
# 16-channel 3x3 convolution on the grid, a 128-unit layer, relu, 64 envs, PPO-clip over 2
# passes), swept in benchmarks/tune_presets.py.
_GRID = dict(num_envs=64, rollout_length=16, n_step=16, buffer_capacity=1024, batch_size=256,
             num_passes=2, policy_objective="ppo_clip", cnn_channels=(16,),
             hidden_sizes=(128,), activation="relu", pi_learning_rate=1e-3,
             v_learning_rate=1e-3, entropy_coef=0.01)
# Continuous control (Brax): Pendulum-v1's schedule with running normalisation.
_CONTROL = dict(num_envs=16, rollout_length=32, n_step=16, buffer_capacity=512,
                batch_size=128, num_passes=4, policy_objective="ppo_clip",
                normalize_obs=True, normalize_reward=True, lr_schedule="linear",
                pi_learning_rate=3e-4, v_learning_rate=1e-3, entropy_coef=0.0)

SUITE_PRESETS: dict[str, dict[str, Any]] = {
    **{f"navix/Navix-{task}-v0": dict(_GRID, env=f"navix/Navix-{task}-v0",
                                      total_timesteps=steps)
       for task, steps in (("Empty-5x5", 262_144), ("Empty-6x6", 262_144),
                           ("DoorKey-8x8", 262_144))},
    **{f"xminigrid/MiniGrid-{task}": dict(_GRID, env=f"xminigrid/MiniGrid-{task}",
                                          total_timesteps=steps)
       for task, steps in (("Empty-5x5", 98_304), ("Empty-6x6", 98_304),
                           ("DoorKey-8x8", 262_144))},
    "brax/inverted_pendulum": dict(_CONTROL, env="brax/inverted_pendulum",
                                   total_timesteps=1_048_576),
    # Brax hopper: inverted_pendulum's settings, not swept.
    "brax/hopper": dict(_CONTROL, env="brax/hopper", total_timesteps=1_048_576),
    "jumanji/Snake-v1": dict(_GRID, env="jumanji/Snake-v1", total_timesteps=262_144),
    # Game2048's board is rank 2, so the "auto" torso is the MLP. pi's learning rate 3e-4
    # (1e-3 before): 3,502 against 3,108 over 4 seeds at 1M (tune_presets.py "jumanji/
    # Game2048-v1 torso"), where Jumanji's own A2C scored 3,373 over 16 (learning.py).
    "jumanji/Game2048-v1": dict(_GRID, env="jumanji/Game2048-v1", hidden_sizes=(256, 256),
                                normalize_reward=True, pi_learning_rate=3e-4,
                                total_timesteps=1_048_576),
    # A Craftax reset generates a world (about 15 steps' worth here): 4 fresh episodes per
    # step for the 64 envs instead of 64 trained 4.4x faster (3.9k vs 0.9k env steps/s, one
    # seed, this CPU); episodes last hundreds of steps, so two envs rarely end together.
    # 8-step returns and entropy 0.003 (16 and 0.01 before): the best training return at
    # 262k of tune_presets.py "craftax/Craftax-Classic-Symbolic-v1 returns".
    "craftax/Craftax-Classic-Symbolic-v1": dict(
        _GRID, env="craftax/Craftax-Classic-Symbolic-v1", hidden_sizes=(256, 256),
        n_step=8, entropy_coef=0.003, pi_learning_rate=3e-4, v_learning_rate=3e-4,
        resets_per_step=4, total_timesteps=1_048_576),
}

PRESETS: dict[str, dict[str, Any]] = {
    # The defaults are tuned for CartPole-v1 (benchmarks/tune_default.py); the learning rates
    # decaying linearly to 0 over the run solved 16/16 seeds instead of 15/16
    # (benchmarks/tune_presets.py "CartPole-v1 schedule", seeds apart from learning.py's).
    "CartPole-v1": dict(env="CartPole-v1", lr_schedule="linear"),
    # Swept in benchmarks/tune_presets.py (results/tune_presets.md). Acrobot, MountainCar,
    # Pendulum and MountainCarContinuous use running observation and reward normalisation
    # (as rl-baselines3-zoo's A2C settings do) and the zoo's budgets.
    "Acrobot-v1": dict(env="Acrobot-v1", normalize_obs=True, normalize_reward=True,
                       entropy_coef=0.0, total_timesteps=500_000),
    "Catch-bsuite": dict(env="Catch-bsuite", pi_learning_rate=3e-3, total_timesteps=65_536),
    "Pendulum-v1": dict(
        env="Pendulum-v1", num_envs=16, rollout_length=32, n_step=16, buffer_capacity=512,
        batch_size=128, num_passes=4, policy_objective="ppo_clip", gamma=0.95,
        normalize_obs=True, normalize_reward=True, lr_schedule="linear",
        pi_learning_rate=3e-4, v_learning_rate=1e-3, entropy_coef=0.0,
        total_timesteps=1_048_576),
    # The A2C schedule of the zoo: 16 envs x 5 steps, one update per iteration, RMSprop.
    "MountainCar-v0": dict(
        env="MountainCar-v0", num_envs=16, rollout_length=5, n_step=5, buffer_capacity=80,
        batch_size=80, optimizer="rmsprop", max_grad_norm=0.5, normalize_obs=True,
        normalize_reward=True, pi_learning_rate=7e-4, v_learning_rate=3e-3, entropy_coef=0.0,
        total_timesteps=1_000_000),
    # gSDE redrawn every 16 steps, 4 envs x 100 steps (the zoo's settings), RMSprop.
    "MountainCarContinuous-v0": dict(
        env="MountainCarContinuous-v0", num_envs=4, rollout_length=100, n_step=100,
        buffer_capacity=400, batch_size=400, optimizer="rmsprop", max_grad_norm=0.5,
        exploration="gsde", sde_sample_freq=16, normalize_obs=True, normalize_reward=True,
        pi_learning_rate=2e-3, v_learning_rate=3e-3, entropy_coef=0.0,
        total_timesteps=100_000),
    # MinAtar: MinAtar's network (one 16-channel 3x3 convolution, a 128-unit layer), relu,
    # 64 envs, PPO-clip over 2 passes; the schedule swept on Breakout, then pi's learning rate
    # per game (4 seeds each at 262k steps): 2e-3 for Breakout, Asterix and Freeway, 1e-3 for
    # SpaceInvaders.
    **{f"{game}-MinAtar": dict(
        env=f"{game}-MinAtar", num_envs=64, rollout_length=16, n_step=16,
        buffer_capacity=1024, batch_size=256, num_passes=2, policy_objective="ppo_clip",
        torso="cnn", cnn_channels=(16,), hidden_sizes=(128,), activation="relu",
        pi_learning_rate=pi_lr, v_learning_rate=1e-3, entropy_coef=0.01,
        total_timesteps=262_144)
       for game, pi_lr in (("Breakout", 2e-3), ("Asterix", 2e-3), ("SpaceInvaders", 1e-3),
                           ("Freeway", 2e-3))},
    **SUITE_PRESETS,
    "coax_a2c": dict(
        env="CartPole-v1",
        num_envs=1,
        rollout_length=256,
        n_step=5,
        gamma=0.9,
        buffer_capacity=256,
        batch_size=32,
        num_passes=4,
        clear_buffer=True,
        pi_learning_rate=1e-3,
        v_learning_rate=2e-3,
        value_loss="huber",
        shared_torso="sync",
        entropy_coef=0.0,
        total_timesteps=102_400,
    ),
}
