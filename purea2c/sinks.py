"""Where a training run's metrics and states go between chunks: output sinks.

A sink is called after each chunk with ``(iteration, {metric: [seeds, iters]})`` (the
iteration count after the chunk) and closed at the end; `run_loop.run_in_chunks` takes
them as callbacks. `Checkpoints` is the one sink of states, ``(iteration, state)``.

- `MetricsLog`: ``metrics.csv`` (appended every chunk) and ``metrics.parquet``;
- `TensorBoard`: scalars, the mean over seeds (tensorboardX);
- `Progress`: a rich progress bar on a terminal, plain lines every 10% otherwise, with the
  run's total of skipped updates (`skipped_updates` sums them for the summary and run.json);
- `Checkpoints`: orbax checkpoints of the whole vmapped state, every N seconds, keeping the
  newest K intact ones.

With several processes (`purea2c.sharding`), the metrics reach the sinks gathered, and only
process 0 has the file sinks; `Checkpoints` runs on every process, which agree on when to
save and gather the state, and process 0 writes it.
"""

from __future__ import annotations

import csv
import io
import math
import pathlib
import sys
import time
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from purea2c import checkpoint, sharding
from purea2c.atomic import write_atomically
from purea2c.errors import RunError
from purea2c.plots import nanmean, running_mean_return
from purea2c.run_dir import METRICS_CSV, METRICS_PARQUET
from purea2c.run_loop import DIVERGED


class Sink(Protocol):
    def __call__(self, iteration: int, metrics: dict[str, np.ndarray]) -> None: ...

    def close(self) -> None: ...


class MetricsLog:
    """Per-iteration metrics of every seed, in memory and in ``metrics.csv``.

    The CSV has one row per (iteration, seed); floats are written with ``repr`` so they read
    back bitwise. On resume, rows past the checkpoint are dropped. A log written before the
    `DIVERGED` column existed is continued with it (0 on its rows).
    """

    def __init__(self, run_dir: pathlib.Path, fields: tuple[str, ...],
                 dtypes: dict[str, np.dtype], num_seeds: int, keep_iterations: int):
        self.path = run_dir / METRICS_CSV
        self.fields = fields
        self.dtypes = dtypes
        self.num_seeds = num_seeds
        self.blocks: list[dict[str, np.ndarray]] = []  # each {name: [seeds, iters]}
        columns = ["iteration", "seed", *fields]
        kept: list[list[str]] = []
        if self.path.exists() and keep_iterations > 0:
            with open(self.path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                older = columns[-1] == DIVERGED and header == columns[:-1]
                if header != columns and not older:
                    raise RunError(f"{self.path} has columns {header}, expected {columns}")
                try:
                    kept = [row + ["0"] * older for row in reader
                            if int(row[0]) <= keep_iterations]
                except (ValueError, IndexError) as e:
                    raise RunError(f"{self.path} has a malformed row: {e}") from e
            if len(kept) != keep_iterations * num_seeds:
                raise RunError(f"{self.path} holds {len(kept)} rows up to iteration "
                               f"{keep_iterations}, expected {keep_iterations * num_seeds}")
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        writer.writerows(kept)
        write_atomically(self.path, text.getvalue())
        if kept:
            block = {}
            for j, name in enumerate(fields):
                values = np.array([self._parse(row[2 + j], name) for row in kept],
                                  dtype=dtypes[name])
                block[name] = values.reshape(keep_iterations, num_seeds).T
            self.blocks.append(block)
        self.iterations = keep_iterations
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def _parse(self, text: str, name: str) -> Any:
        kind = np.dtype(self.dtypes[name]).kind
        if kind == "b":
            return text in ("1", "True", "true")
        return int(text) if kind in "iu" else float(text)

    @staticmethod
    def _format(value: Any) -> str:
        if isinstance(value, (np.floating, float)):
            return repr(float(value))
        if isinstance(value, (np.bool_, bool)):
            return str(int(value))
        return str(int(value))

    def __call__(self, iteration: int, metrics: dict[str, np.ndarray]) -> None:
        self.append(metrics)

    def append(self, metrics: dict[str, np.ndarray]) -> None:
        """``metrics``: ``{name: [seeds, iters]}`` of the iterations after the current ones."""
        count = next(iter(metrics.values())).shape[1]
        rows = []
        for i in range(count):
            for s in range(self.num_seeds):
                rows.append([str(self.iterations + i + 1), str(s)]
                            + [self._format(metrics[name][s, i]) for name in self.fields])
        self._writer.writerows(rows)
        self._file.flush()
        self.blocks.append(metrics)
        self.iterations += count

    def arrays(self) -> dict[str, np.ndarray]:
        """``{name: [seeds, iterations]}`` of everything logged."""
        if not self.blocks:
            return {name: np.zeros((self.num_seeds, 0), self.dtypes[name]) for name in self.fields}
        return {name: np.concatenate([b[name] for b in self.blocks], axis=1)
                for name in self.fields}

    def tail(self, width: int) -> dict[str, np.ndarray]:
        """``{name: [seeds, <= width]}`` of the last ``width`` iterations."""
        blocks, count = [], 0
        for block in reversed(self.blocks):
            if count >= width:
                break
            blocks.append(block)
            count += next(iter(block.values())).shape[1]
        return {name: np.concatenate([b[name] for b in reversed(blocks)], axis=1)[:, -width:]
                for name in self.fields}

    def columns(self) -> dict[str, np.ndarray]:
        """The long table: ``iteration``, ``seed`` and one column per metric."""
        arrays = self.arrays()
        iters = np.repeat(np.arange(1, self.iterations + 1, dtype=np.int64), self.num_seeds)
        seeds = np.tile(np.arange(self.num_seeds, dtype=np.int64), self.iterations)
        out = {"iteration": iters, "seed": seeds}
        out.update({name: arrays[name].T.reshape(-1) for name in self.fields})
        return out

    def write_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(self.columns())
        write_atomically(self.path.with_name(METRICS_PARQUET),
                         lambda f: pq.write_table(table, f))

    def close(self) -> None:
        self._file.close()


class TensorBoard:
    """Scalars ``train/<metric>`` (mean over seeds, finite values only) at env steps."""

    def __init__(self, logdir: pathlib.Path, purge_step: int | None):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise RunError("--tensorboard needs tensorboardX: "
                           "pip install 'purea2c[tensorboard]'") from e
        self.writer = SummaryWriter(logdir=str(logdir), purge_step=purge_step)

    def __call__(self, iteration: int, metrics: dict[str, np.ndarray]) -> None:
        steps = metrics["env_steps"][0]
        for i in range(steps.shape[0]):
            for name, values in metrics.items():
                if name == "env_steps":
                    continue
                value = float(nanmean(np.asarray(values[:, i], np.float64)))
                if math.isfinite(value):
                    self.writer.add_scalar(f"train/{name}", value, int(steps[i]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def skipped_updates(arrays: dict[str, np.ndarray], updates_per_iteration: int
                    ) -> dict[str, Any]:
    """The run's total of skipped updates from its metrics ``{name: [seeds, iters]}``:
    ``{"total", "updates" (iterations x updates per iteration x seeds), "per_seed"}``
    (zeros when the metrics have no ``skipped_updates``)."""
    counts = arrays.get("skipped_updates")
    if counts is None:
        some = next(iter(arrays.values()))
        counts = np.zeros(some.shape, np.int64)
    per_seed = np.asarray(counts, np.int64).sum(axis=1)
    return {"total": int(per_seed.sum()), "updates": int(counts.size * updates_per_iteration),
            "per_seed": [int(n) for n in per_seed]}


def format_skipped(counts: dict[str, Any]) -> str:
    """``skipped updates: 3 of 1,280`` (of `skipped_updates`)."""
    return f"skipped updates: {counts['total']:,} of {counts['updates']:,}"


def recent_return(tail: dict[str, np.ndarray]) -> float | None:
    """The mean return over seeds of the episodes that finished in ``tail``'s iterations
    (``{metric: [seeds, iters]}``); NaN when any of them is not finite or an iteration's
    ``finite`` flag is False (diverged); None when no episode finished."""
    returns = np.asarray(tail["episode_return"], np.float64)
    episodes = tail.get("episodes")
    finished = np.asarray(episodes) > 0 if episodes is not None else np.isfinite(returns)
    if "finite" in tail and not np.asarray(tail["finite"], bool).all():
        return math.nan
    if (finished & ~np.isfinite(returns)).any():
        return math.nan
    if returns.size == 0 or not finished.any():
        return None
    smooth = running_mean_return(returns, episodes, returns.shape[1])
    return float(nanmean(smooth[:, -1]))


def format_return(value: float | None) -> str:
    """``value`` in 7 columns: ``-`` when no episode finished, ``nan`` when diverged."""
    if value is None:
        return "   -   "
    if math.isnan(value):
        return "  nan  "
    return f"{value:7.1f}"


class Progress:
    """A rich progress bar on a terminal; plain lines every 10% otherwise. Shows env steps,
    the recent mean training return (over the last ``width`` iterations), the run's total
    of skipped updates (all seeds; ``skipped``: the total before ``done``) and steps/s."""

    def __init__(self, total: int, done: int, num_seeds: int, steps_per_iteration: int,
                 width: int, enabled: bool, history: dict[str, np.ndarray] | None = None,
                 skipped: int = 0):
        from rich.console import Console

        self.console = Console()
        self.total, self.num_seeds = total, num_seeds
        self.steps_per_iteration, self.width = steps_per_iteration, width
        self.skipped = skipped
        self.history = {k: v for k, v in (history or {}).items()
                        if k in ("episode_return", "episodes", "finite")}
        self.start_done, self.start_time = done, time.perf_counter()
        self.rich = None
        self.plain = enabled and not self.console.is_terminal
        self.next_report = 0.0
        if enabled and self.console.is_terminal:
            from rich import progress as rp

            self.rich = rp.Progress(
                rp.TextColumn("[bold]training"), rp.BarColumn(),
                rp.TextColumn("{task.completed:>,.0f}/{task.total:,.0f} env steps"),
                rp.TextColumn("return [cyan]{task.fields[ret]}"),
                rp.TextColumn("skipped {task.fields[skipped]}"),
                rp.TextColumn("{task.fields[rate]}"),
                rp.TimeElapsedColumn(), rp.TextColumn("eta"), rp.TimeRemainingColumn(),
                console=self.console)
            self.task = self.rich.add_task("train", total=total, completed=done, ret="  -  ",
                                           skipped=f"{skipped:,}", rate="")
            self.rich.start()
        elif self.plain:
            self.next_report = (math.floor(10 * done / total) + 1) / 10

    def __call__(self, iteration: int, metrics: dict[str, np.ndarray]) -> None:
        for name in ("episode_return", "episodes", "finite"):
            if name in metrics:
                old = self.history.get(name)
                new = metrics[name] if old is None else np.concatenate([old, metrics[name]], 1)
                self.history[name] = new[:, -self.width:]
        if "skipped_updates" in metrics:
            self.skipped += int(np.asarray(metrics["skipped_updates"], np.int64).sum())
        self.update(iteration * self.steps_per_iteration, recent_return(self.history))

    def update(self, done: int, recent: float | None) -> None:
        elapsed = time.perf_counter() - self.start_time
        rate = (done - self.start_done) * self.num_seeds / max(elapsed, 1e-9)
        ret = format_return(recent)
        if self.rich is not None:
            self.rich.update(self.task, completed=done, ret=ret, skipped=f"{self.skipped:,}",
                             rate=f"{rate:,.0f} steps/s")
        elif self.plain and (done / self.total >= self.next_report or done == self.total):
            print(f"  env steps {done:>11,}/{self.total:,} ({100 * done / self.total:3.0f}%)  "
                  f"recent return {ret}  skipped updates {self.skipped:<6,} "
                  f"{rate:>11,.0f} steps/s", flush=True)
            while self.next_report <= done / self.total:
                self.next_report += 0.1

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()
            self.rich = None


class Checkpoints:
    """Saves the vmapped state to ``ckpt_dir/<iteration>`` after the first chunk that ends
    ``interval`` seconds after the previous save (every chunk if ``interval`` <= 0) and at
    ``final_iteration``; calls ``after_save()`` hooks (e.g. the parquet copy of the metrics)
    after each save. After each save it keeps the newest ``keep`` intact checkpoints
    (`checkpoint.prune`): ``removed`` lists what it removed, and each damaged one removed is
    named in a line to ``warn`` (default: stderr).

    With several processes every process calls it: they save when any of them finds a save
    due (`sharding.process_max`), the state is gathered from all of them (`sharding.fetch`,
    a collective), and only the one with ``write`` (process 0) writes it and runs the
    hooks."""

    def __init__(self, ckpt_dir: pathlib.Path, keep: int, interval: float,
                 final_iteration: int, metadata: Callable[[int], dict[str, Any]],
                 saved: int | None = None, after_save: Iterable[Callable[[], None]] = (),
                 write: bool = True, warn: Callable[[str], None] | None = None):
        self.ckpt_dir, self.keep, self.interval = ckpt_dir, keep, interval
        self.final_iteration, self.metadata = final_iteration, metadata
        self.saved, self.last_save = saved, time.perf_counter()
        self.after_save, self.write = list(after_save), write
        self.warn = warn or (lambda text: print(text, file=sys.stderr, flush=True))
        self.removed: list[checkpoint.Removed] = []

    def __call__(self, iteration: int, state: Any) -> None:
        due = (self.interval <= 0 or time.perf_counter() - self.last_save >= self.interval
               or iteration == self.final_iteration)
        if sharding.process_max(int(due)):
            self.save(iteration, state)

    def save(self, iteration: int, state: Any) -> None:
        """Saves now, unless ``iteration`` is already saved."""
        if self.saved == iteration:
            return
        state = sharding.fetch(state)
        if self.write:
            # overwrite: after a resume that fell back past a damaged checkpoint, the steps
            # above the resumed one belong to the abandoned continuation and are replaced
            # (atomically).
            checkpoint.save(self.ckpt_dir, state, iteration, keep=None,
                            metadata=self.metadata(iteration), overwrite=True)
            removed = checkpoint.prune(self.ckpt_dir, self.keep, intact=(iteration,))
            for step, fault in removed:
                if fault is not None:
                    self.warn(f"purea2c: warning: removed damaged checkpoint {step} "
                              f"({fault}); it did not count among the {self.keep} kept")
            self.removed += removed
            for hook in self.after_save:
                hook()
        self.saved, self.last_save = iteration, time.perf_counter()
