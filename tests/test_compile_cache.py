"""The command line keeps compiled programs in a persistent cache, unless told not to."""

import os
import subprocess
import sys

ARGS = ["--total-timesteps", "512", "--eval-episodes", "0", "--no-progress"]


def _train(tmp_path, name, *extra):
    env = dict(os.environ, PUREA2C_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "purea2c", *ARGS, *extra,
                           "--out", str(tmp_path / name)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_train_fills_the_cache_and_the_flag_turns_it_off(tmp_path):
    _train(tmp_path, "off", "--no-compile-cache")
    assert not (tmp_path / "cache").exists()
    _train(tmp_path, "on")
    entries = list((tmp_path / "cache").iterdir())
    assert entries, "no compiled program was cached"
    # The cached programs give the same run.
    assert (tmp_path / "on" / "metrics.csv").read_bytes() == \
        (tmp_path / "off" / "metrics.csv").read_bytes()


def test_the_python_api_offers_the_cache():
    """`purea2c.enable_compile_cache` is the command line's function, public."""
    import purea2c
    from purea2c import compile_cache

    assert purea2c.enable_compile_cache is compile_cache.enable_compile_cache
    assert "enable_compile_cache" in purea2c.__all__
