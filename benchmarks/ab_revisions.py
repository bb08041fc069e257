"""A/B of the training program's speed: the working tree against a git revision, in one process.

    python benchmarks/ab_revisions.py REV [--schedules sb3,default,coax,512envs] [--rounds 7]

The package at ``REV`` is exported to a temporary directory under the name ``purea2c_rev``
and imported beside the working tree's ``purea2c``. Both compile the same schedules with
their own compiler options, then their programs are called alternately (A B A B, ``--rounds``
times) so that drift on a shared machine hits both; the median env steps/s of each and the
ratio new / old are printed. For measuring what one change gains (benchmarks/NOTES.md).
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parents[1]


def export_revision(rev: str, into: Path) -> None:
    """``purea2c/`` at ``rev`` as the package ``purea2c_rev`` under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "purea2c"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "purea2c").rename(into / "purea2c_rev")
    for path in (into / "purea2c_rev").rglob("*.py"):
        text = re.sub(r"\bpurea2c(?=[.\s])", "purea2c_rev", path.read_text())
        path.write_text(text)


def schedules(config_cls) -> dict:
    return {
        "sb3": config_cls(num_envs=8, rollout_length=5, n_step=5, buffer_capacity=40,
                          batch_size=40, total_timesteps=40 * 4000),
        "default": config_cls(total_timesteps=98_304 * 2),
        "coax": config_cls.preset("coax_a2c", total_timesteps=20_480),
        "512envs": config_cls(num_envs=512, buffer_capacity=8192, batch_size=8192,
                              total_timesteps=8192 * 40),
    }


def compiled_program(package, name: str):
    # The training module was purea2c/train.py before it was renamed training.py.
    try:
        train_mod = importlib.import_module(f"{package.__name__}.training")
    except ModuleNotFoundError:
        train_mod = importlib.import_module(f"{package.__name__}.train")
    config = schedules(package.Config)[name]
    options = getattr(package, "compiler_options", lambda: None)()
    if hasattr(package, "Agent") and hasattr(package.Agent, "train"):  # the agent seam
        fn = jax.jit(lambda k, c: package.Agent(c).train(k), compiler_options=options)
    else:
        fn = jax.jit(train_mod._train, compiler_options=options)
    key = jax.random.key(0)
    compiled = fn.lower(key, config).compile()
    jax.block_until_ready(compiled(key, config))
    return lambda: jax.block_until_ready(compiled(key, config)), config.total_timesteps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="git revision to compare the working tree against")
    parser.add_argument("--schedules", default="sb3,default,coax,512envs")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        export_revision(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        sys.path.insert(0, str(REPO))
        packages = {"old": importlib.import_module("purea2c_rev"),
                    "new": importlib.import_module("purea2c")}
        print(f"old = {args.rev}, new = working tree; jax {jax.__version__}, "
              f"{jax.default_backend()}")
        for name in args.schedules.split(","):
            programs = {side: compiled_program(pkg, name) for side, pkg in packages.items()}
            speeds: dict[str, list[float]] = {side: [] for side in programs}
            for _ in range(args.rounds):
                for side, (call, steps) in programs.items():
                    start = time.perf_counter()
                    call()
                    speeds[side].append(steps / (time.perf_counter() - start))
            old, new = (statistics.median(speeds[s]) for s in ("old", "new"))
            print(f"{name:>8}: old {old:>10,.0f}  new {new:>10,.0f} env steps/s  "
                  f"new/old {new / old:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
