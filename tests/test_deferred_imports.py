"""deferred_imports.py: gymnax's plotting libraries are not imported until something draws,
and drawing through gymnax's modules still works. Each case runs in a fresh interpreter, as
the deferral only acts on modules that no one has imported yet."""

import subprocess
import sys
import textwrap

PLOTTING = ("matplotlib", "matplotlib.pyplot", "seaborn", "pandas", "scipy")


def run_fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_gymnax_env_is_made_without_the_plotting_libraries():
    out = run_fresh(f"""
        import sys
        import purea2c
        env = purea2c.envs.make("CartPole-v1")
        assert env.observation_spec.shape == (4,)
        print(sorted(m for m in {PLOTTING!r} if m in sys.modules))
        """)
    assert out.strip() == "[]"


def test_stand_ins_read_through_to_the_real_modules_and_leave_sys_modules():
    out = run_fresh("""
        import sys
        import purea2c.envs.gymnax
        from purea2c.envs.deferred_imports import DEFERRED, OnUse
        assert not any(isinstance(sys.modules.get(m), OnUse) for m in DEFERRED)
        import gymnax.environments.misc.pong as pong
        assert isinstance(pong.sns, OnUse) and isinstance(pong.colors, OnUse)
        palette = pong.sns.color_palette          # the first read imports seaborn
        import seaborn, matplotlib.colors, matplotlib.pyplot
        assert palette is seaborn.color_palette
        assert pong.colors.ListedColormap is matplotlib.colors.ListedColormap
        assert pong.plt.figure is matplotlib.pyplot.figure
        assert not isinstance(sys.modules["matplotlib"], OnUse)
        print("ok")
        """)
    assert out.strip() == "ok"


def test_catch_is_drawn_through_its_stand_in_pyplot():
    """Catch's ``render`` calls ``plt`` from its module: here the stand-in, as nothing had
    imported matplotlib when gymnax was imported."""
    out = run_fresh("""
        import jax, jax.numpy as jnp, numpy as np
        import purea2c
        import purea2c.envs.gymnax  # imports gymnax, as making a gymnax env does
        import gymnax
        from gymnax.environments.bsuite import catch
        from purea2c.envs.deferred_imports import OnUse
        assert isinstance(catch.plt, OnUse)
        from purea2c import rendering
        env, params = gymnax.make("Catch-bsuite")
        _, state = env.reset(jax.random.key(0), params)
        states = [state]
        for t in range(2):
            _, state, _, _, _ = env.step_env(jax.random.key(t), state, jnp.int32(1), params)
            states.append(state)
        frames, fps = rendering.draw_frames(purea2c.Config(env="Catch-bsuite"),
                                            rendering.Episode(states, np.zeros(2)))
        assert len(frames) == 3 and frames[0].shape[2] == 3 and fps > 0
        assert not np.array_equal(frames[0], frames[-1])
        print("ok")
        """)
    assert out.strip() == "ok"
