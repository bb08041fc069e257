"""A Weights & Biases sink: a run's config, its metrics after every chunk and its record.

An optional extra (``pip install 'purea2c[wandb]'``); ``wandb`` is imported when a
`WandbSink` is created, never when this module is. The sink has the shape of the other
metrics sinks (`purea2c.sinks`): it is called after each chunk with ``(iteration,
{metric: [seeds, chunk iterations]})`` and closed at the end, so it can be one of
`run_loop.run_in_chunks`'s callbacks::

    sink = WandbSink("my-project", run_dir, rundir.config_to_json(config), info)
    end = run_loop.run_in_chunks(state, config, program, n, chunk, callbacks=[sink])
    sink.close(status)

What it logs:

- the config: ``wandb.init(config=config)`` (the run's `Config` as JSON values, as in
  ``config.json``);
- per iteration of every chunk, one wandb step (``wandb.log``, in order) with
  ``env_steps`` (per seed, as in the metrics), ``iteration`` (1-based over the run) and
  ``train/<metric>``, the mean over seeds of each metric, NaN ignored, left out when it is
  not finite (as the TensorBoard sink does); with several seeds also
  ``train/episode_return_min`` and ``train/episode_return_max`` (over the seeds that
  finished an episode). The ``train/*`` charts are plotted against ``env_steps``
  (``define_metric(..., step_metric="env_steps")``); wandb's own ``_step`` counts the
  logged iterations;
- the run record (run.json): ``run.summary["run"]`` at the start and again when closed
  (the same dict, so what the caller added to it since is there), with the exit status in
  ``run.summary["exit_status"]`` and as the run's exit code (``wandb.finish``).

A resumed run passes the wandb run's id (``run_id``, e.g. kept in run.json) to continue the
same wandb run (``resume="allow"``); the iterations after its checkpoint that were logged
before the interruption are logged again, at the same ``env_steps``.
"""

from __future__ import annotations

import math
import pathlib
import sys
from typing import Any

import numpy as np

from purea2c.errors import RunError

# The extra that installs wandb, named by the error when it is missing.
INSTALL = "pip install 'purea2c[wandb]'"
# The metrics with their spread over seeds logged beside the mean (several seeds only).
SPREAD = ("episode_return",)
# The exit code wandb records when the sink is closed without a status while an exception
# is on its way (a sink closed in a ``finally``); 0 otherwise.
EXIT_ERROR = 1


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError as e:
        raise RunError(f"--wandb needs the wandb package: {INSTALL}") from e
    return wandb


def _mean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


class WandbSink:
    """Logs a run to the Weights & Biases project ``project`` (module docstring).

    ``run_dir``: wandb's ``dir`` (its files go to ``run_dir/wandb``); ``config``: the run's
    config as JSON values; ``record``: the run record (run.json's dict); ``name``: the
    wandb run's name (default: the run directory's name); ``mode``: ``"online"``,
    ``"offline"`` or ``"disabled"`` (default: wandb's, e.g. ``WANDB_MODE``); ``run_id``:
    continue that wandb run; ``init_kwargs``: more arguments of ``wandb.init`` (``entity``,
    ``group``, ``tags``, ...). A missing wandb, or a ``wandb.init`` that fails (no login,
    no network), raises `RunError`."""

    def __init__(self, project: str, run_dir: pathlib.Path | str, config: dict[str, Any],
                 record: dict[str, Any], name: str | None = None, mode: str | None = None,
                 run_id: str | None = None, **init_kwargs: Any):
        wandb = _import_wandb()
        run_dir = pathlib.Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.record = record
        if run_id is not None:
            init_kwargs.setdefault("id", run_id)
            init_kwargs.setdefault("resume", "allow")
        try:
            self.run = wandb.init(project=project, dir=str(run_dir), config=dict(config),
                                  name=name or run_dir.name, mode=mode, **init_kwargs)
        except Exception as e:  # wandb's errors differ between releases
            raise RunError(f"--wandb {project}: wandb.init failed: "
                           f"{type(e).__name__}: {e} (log in with `wandb login`, or log "
                           "offline with WANDB_MODE=offline)") from e
        self.run.define_metric("env_steps")
        self.run.define_metric("iteration")
        self.run.define_metric("train/*", step_metric="env_steps")
        self.run.summary["run"] = record
        self.run_id: str = self.run.id
        self.closed = False

    def __call__(self, iteration: int, metrics: dict[str, np.ndarray]) -> None:
        """``iteration``: the iteration count after the chunk; ``metrics``: ``{name: [seeds,
        chunk iterations]}`` with ``env_steps``."""
        steps = np.asarray(metrics["env_steps"])[0]
        count = steps.shape[0]
        several = next(iter(metrics.values())).shape[0] > 1
        for i in range(count):
            row: dict[str, Any] = {"env_steps": int(steps[i]),
                                   "iteration": iteration - count + i + 1}
            for name, values in metrics.items():
                if name == "env_steps":
                    continue
                column = np.asarray(values[:, i], np.float64)
                value = _mean(column)
                if math.isfinite(value):
                    row[f"train/{name}"] = value
                if several and name in SPREAD and np.isfinite(column).any():
                    row[f"train/{name}_min"] = float(np.nanmin(column))
                    row[f"train/{name}_max"] = float(np.nanmax(column))
            self.run.log(row)

    def close(self, status: int | None = None) -> None:
        """Writes the run record to the summary and finishes the wandb run with exit code
        ``status``; without one, 1 when an exception is being handled (a sink closed in a
        ``finally`` of a failed run), else 0. Later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        if status is None:
            status = EXIT_ERROR if sys.exc_info()[0] is not None else 0
        self.run.summary["run"] = self.record
        self.run.summary["exit_status"] = int(status)
        self.run.finish(exit_code=int(status))
