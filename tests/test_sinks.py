"""sinks.py: the progress display (nan when diverged, - when no episode finished), the
metrics log's CSV, checkpoints on an interval."""

import math

import numpy as np
import pytest

from purea2c import sinks


def _tail(returns, episodes, finite=None):
    tail = {"episode_return": np.asarray(returns, np.float32),
            "episodes": np.asarray(episodes, np.int32)}
    if finite is not None:
        tail["finite"] = np.asarray(finite, bool)
    return tail


def test_recent_return_tells_diverged_from_no_episode():
    assert sinks.recent_return(_tail([[np.nan, np.nan]], [[0, 0]])) is None
    assert math.isnan(sinks.recent_return(_tail([[np.nan, 5.0]], [[2, 1]])))  # NaN return
    assert math.isnan(sinks.recent_return(_tail([[4.0, 5.0]], [[1, 1]], [[True, False]])))
    # weighted by episode counts, then averaged over seeds: (4*1 + 6*3)/4 = 5.5 and 10
    assert sinks.recent_return(_tail([[4.0, 6.0], [np.nan, 10.0]],
                                     [[1, 3], [0, 2]])) == pytest.approx(7.75)
    assert sinks.format_return(None).strip() == "-"
    assert sinks.format_return(math.nan).strip() == "nan"
    assert sinks.format_return(12.345).strip() == "12.3"


def test_plain_progress_lines_show_nan_and_dash(capsys):
    progress = sinks.Progress(total=400, done=0, num_seeds=1, steps_per_iteration=100,
                              width=2, enabled=True)
    progress.rich = None  # plain lines, as when stdout is not a terminal
    progress.plain, progress.next_report = True, 0.1
    progress(1, _tail([[np.nan]], [[0]]))
    progress(2, _tail([[7.0]], [[1]]))
    progress(3, {**_tail([[np.nan]], [[1]]), "finite": np.array([[False]])})
    progress.close()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("recent return")[1].split()[0] for line in lines] == ["-", "7.0", "nan"]


def test_metrics_log_appends_rows_and_keeps_them_on_resume(tmp_path):
    fields = ("env_steps", "episode_return", "finite")
    dtypes = {"env_steps": np.dtype(np.int32), "episode_return": np.dtype(np.float32),
              "finite": np.dtype(bool)}
    log = sinks.MetricsLog(tmp_path, fields, dtypes, num_seeds=2, keep_iterations=0)
    chunk = {"env_steps": np.array([[1, 2], [1, 2]], np.int32),
             "episode_return": np.array([[0.1, np.nan], [2.0, 3.0]], np.float32),
             "finite": np.array([[True, False], [True, True]])}
    log(2, chunk)
    log.close()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "iteration,seed,env_steps,episode_return,finite"
    assert lines[1:] == [f"1,0,1,{float(np.float32(0.1))!r},1", "1,1,1,2.0,1",
                         "2,0,2,nan,0", "2,1,2,3.0,1"]
    again = sinks.MetricsLog(tmp_path, fields, dtypes, num_seeds=2, keep_iterations=1)
    again.close()
    assert (tmp_path / "metrics.csv").read_text().splitlines() == lines[:3]
    np.testing.assert_array_equal(again.arrays()["episode_return"], chunk["episode_return"][:, :1])


def test_checkpoints_on_an_interval(tmp_path, monkeypatch):
    saved, hooks = [], []
    monkeypatch.setattr(sinks.checkpoint, "save",
                        lambda d, state, it, keep, metadata, overwrite: saved.append((it, metadata)))
    every = sinks.Checkpoints(tmp_path, keep=2, interval=0, final_iteration=9,
                              metadata=lambda it: {"iteration": it},
                              after_save=[lambda: hooks.append(1)])
    every(3, "s")
    every(3, "s")  # already saved
    assert saved == [(3, {"iteration": 3})] and hooks == [1]
    rarely = sinks.Checkpoints(tmp_path, keep=2, interval=1e9, final_iteration=9,
                               metadata=lambda it: {})
    rarely(3, "s")
    rarely(9, "s")  # the last iteration always saves
    assert saved[-1] == (9, {})


def test_skipped_updates_are_totalled_over_seeds_and_iterations():
    metrics = {"skipped_updates": np.array([[0, 16, 3], [1, 0, 0]], np.int32),
               "finite": np.ones((2, 3), bool)}
    counts = sinks.skipped_updates(metrics, 16)
    assert counts == {"total": 20, "updates": 96, "per_seed": [19, 1]}
    assert sinks.format_skipped(counts) == "skipped updates: 20 of 96"
    assert sinks.skipped_updates({"finite": np.ones((2, 3), bool)}, 16) == \
        {"total": 0, "updates": 96, "per_seed": [0, 0]}


def test_plain_progress_lines_show_the_total_of_skipped_updates(capsys):
    progress = sinks.Progress(total=300, done=100, num_seeds=2, steps_per_iteration=100,
                              width=2, enabled=True, skipped=5)  # resumed after 5 skipped
    progress.rich = None
    progress.plain, progress.next_report = True, 0.1
    progress(2, {**_tail([[1.0], [2.0]], [[1], [1]]),
                 "skipped_updates": np.array([[3], [4]], np.int32)})
    progress(3, _tail([[1.0], [2.0]], [[1], [1]]))  # no skipped_updates: none counted
    progress.close()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("skipped updates")[1].split()[0] for line in lines] == ["12", "12"]


def test_metrics_log_continues_a_log_written_before_the_diverged_column(tmp_path):
    (tmp_path / "metrics.csv").write_text("iteration,seed,env_steps\n1,0,16\n2,0,32\n")
    fields = ("env_steps", "diverged")
    dtypes = {"env_steps": np.dtype(np.int32), "diverged": np.dtype(bool)}
    log = sinks.MetricsLog(tmp_path, fields, dtypes, num_seeds=1, keep_iterations=1)
    log(2, {"env_steps": np.array([[32]], np.int32), "diverged": np.array([[True]])})
    log.close()
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [
        "iteration,seed,env_steps,diverged", "1,0,16,0", "2,0,32,1"]
    (tmp_path / "metrics.csv").write_text("iteration,seed,other\n1,0,16\n")
    with pytest.raises(sinks.RunError, match="has columns"):
        sinks.MetricsLog(tmp_path, fields, dtypes, num_seeds=1, keep_iterations=1)


def test_checkpoints_keep_intact_ones_and_name_the_damaged_ones_removed(tmp_path):
    import os

    from purea2c import checkpoint

    directory = tmp_path / "checkpoints"
    warnings = []
    sink = sinks.Checkpoints(directory, keep=2, interval=0, final_iteration=9,
                             metadata=lambda it: {"iteration": it}, warn=warnings.append)
    sink(1, {"x": np.arange(3)})
    data = next(p for p in sorted((directory / "1" / "state").rglob("*")) if p.is_file())
    os.truncate(data, 0)  # checkpoint 1 is damaged
    sink(2, {"x": np.arange(3) + 1})
    assert checkpoint.all_steps(directory) == [2]
    assert [r.step for r in sink.removed] == [1] and "damaged" in sink.removed[0].fault
    assert len(warnings) == 1 and "removed damaged checkpoint 1" in warnings[0]
    sink(3, {"x": np.arange(3) + 2})
    sink(4, {"x": np.arange(3) + 3})  # an intact one beyond keep: removed without a word
    assert checkpoint.all_steps(directory) == [3, 4] and len(warnings) == 1
    assert [(r.step, r.fault) for r in sink.removed[1:]] == [(2, None)]
