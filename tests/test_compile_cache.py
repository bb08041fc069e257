"""purea2c keeps compiled programs in a persistent cache, from the command line and from
Python, unless told not to."""

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


def _python(code, tmp_path, **env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("PUREA2C_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    full.update({"PUREA2C_CACHE_DIR": str(tmp_path / "cache"), **env})
    proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# A program compiled before and after `import purea2c`, and what folder JAX uses.
_CODE = """
import jax, numpy as np
def before_import(x): return x * 3
def after_import(x): return x + 2
jax.jit(before_import)(np.ones(3)).block_until_ready()
import purea2c
{between}
jax.jit(after_import)(np.ones(4)).block_until_ready()
print(jax.config.jax_compilation_cache_dir)
"""


def test_import_turns_the_cache_on_for_every_later_program(tmp_path):
    """The Python API caches without being asked, the caller's programs too, even where
    the process compiled before importing purea2c."""
    assert _python(_CODE.format(between=""), tmp_path) == str(tmp_path / "cache")
    names = " ".join(p.name for p in (tmp_path / "cache").iterdir())
    assert "jit_after_import" in names and "before_import" not in names, names


def test_the_environment_and_the_switch_turn_it_off(tmp_path):
    assert _python(_CODE.format(between=""), tmp_path, PUREA2C_COMPILE_CACHE="0") == "None"
    assert _python(_CODE.format(between="purea2c.enable_compile_cache(False)"),
                   tmp_path) == "None"
    assert not (tmp_path / "cache").exists()
    # ...and on again.
    on = "purea2c.enable_compile_cache(False); purea2c.enable_compile_cache()"
    assert _python(_CODE.format(between=on), tmp_path) == str(tmp_path / "cache")


def test_a_folder_the_user_chose_is_kept(tmp_path):
    mine = str(tmp_path / "mine")
    assert _python(_CODE.format(between="purea2c.enable_compile_cache(False)"), tmp_path,
                   JAX_COMPILATION_CACHE_DIR=mine) == mine
    assert _python(_CODE.format(between=""), tmp_path, JAX_COMPILATION_CACHE_DIR=mine) == mine
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_folder_means_no_cache_and_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = _python(_CODE.format(between=""), tmp_path, PUREA2C_CACHE_DIR=str(blocker / "jax"))
    assert out == "None"


def test_a_folder_filled_without_eviction_records_is_used_without_errors(tmp_path):
    """Entries an earlier purea2c (or plain JAX) wrote carry no eviction records; JAX's size
    bound would fail on them at every write, so purea2c leaves the folder unbounded."""
    code = _CODE.format(between="")
    _python(code, tmp_path, PUREA2C_COMPILE_CACHE="0",  # plain JAX fills it first
            JAX_COMPILATION_CACHE_DIR=str(tmp_path / "cache"),
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    assert list((tmp_path / "cache").iterdir())
    env = {k: v for k, v in os.environ.items()
           if k not in ("PUREA2C_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    env["PUREA2C_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-c", code.replace("after_import(x): return x + 2",
                                                              "after_import(x): return x - 2")
                           + "print(jax.config.jax_compilation_cache_max_size)"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Error writing persistent compilation cache" not in proc.stderr, proc.stderr
    assert proc.stdout.split() == [str(tmp_path / "cache"), "-1"]
