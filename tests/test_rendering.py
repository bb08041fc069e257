"""rendering.py: undrawable environments refused; matplotlib-drawn frames and GIFs.

`tests/test_cli.py` renders a trained CartPole policy through ``purea2c render``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purea2c
from purea2c import rendering
from purea2c.errors import RunError


def test_render_refuses_environments_gymnax_cannot_draw(tmp_path):
    config = purea2c.Config(env="DeepSea-bsuite")
    with pytest.raises(RunError, match="gymnax cannot draw DeepSea-bsuite"):
        rendering.render_gif(config, None, tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_matplotlib_drawn_environments(tmp_path):
    """Environments gymnax draws with matplotlib (here Catch) go through its Visualizer."""
    import gymnax
    from PIL import Image

    env, params = gymnax.make("Catch-bsuite")
    _, state = env.reset(jax.random.key(0), params)
    states, rewards = [state], []
    for t in range(3):
        _, state, reward, _, _ = env.step_env(jax.random.key(t), state, jnp.int32(1), params)
        states.append(state)
        rewards.append(float(reward))
    episode = rendering.Episode(states, np.asarray(rewards))
    frames, fps = rendering.draw_frames(purea2c.Config(env="Catch-bsuite"), episode)
    assert len(frames) == 4 and fps > 0
    assert frames[0].ndim == 3 and frames[0].shape[2] == 3
    assert not np.array_equal(frames[0], frames[-1])  # the ball moved
    rendering.write_gif(frames, tmp_path / "catch.gif", fps)
    with Image.open(tmp_path / "catch.gif") as im:
        assert im.n_frames >= 2
