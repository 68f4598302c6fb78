"""`ckconv plot curves`: several runs' metrics in one picture. The smoothing is checked against
its definition evaluated directly (every value within the window, summed afresh), the figure
against the CSV it was drawn from."""

import csv
import math
import random

import pytest

from ckconv.app import plot_command
from ckconv.app.cli import main
from ckconv.app.plots import metric_series, plot_runs


def _write_run(folder, name, seed, rows):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"name: {name}\nseed: {seed}\ntask:\n  name: toy\n")
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "step", "train/loss", "val/mse"])
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _rows(scale):
    """train/loss every 10 steps, val/mse every 100 (the app's layout: empty cells elsewhere)."""
    rows = []
    for step in range(10, 310, 10):
        rows.append({"epoch": step // 100, "step": step, "train/loss": scale / step,
                     "val/mse": ""})  # fmt: skip
        if step % 100 == 0:
            rows.append({"epoch": step // 100, "step": step, "train/loss": "",
                         "val/mse": scale * 0.5 / step})  # fmt: skip
    return [{k: str(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize("window", [0, 1, 25, 100, 1e9])
def test_trailing_window_is_the_mean_over_the_last_window_steps(window):
    rng = random.Random(window)
    steps = sorted(rng.sample(range(1000), 60))
    rows = [{"step": str(s), "m": str(rng.uniform(-1, 1))} for s in steps]
    rows.insert(5, {"step": "3", "m": ""})  # a row without the metric is skipped
    got_steps, got = metric_series(rows, "m", window=window)
    assert got_steps == [float(s) for s in steps]
    raw = [float(r["m"]) for r in rows if r["m"]]
    for i, s in enumerate(steps):
        inside = [v for t, v in zip(steps, raw, strict=True)
                  if t <= s and ((window == 0 and t == s) or t > s - window)]  # fmt: skip
        assert got[i] == pytest.approx(sum(inside) / len(inside), abs=1e-12)


def test_bad_window_is_refused():
    with pytest.raises(ValueError, match="window"):
        metric_series([], "m", window=-1)
    with pytest.raises(ValueError, match="window"):
        metric_series([], "m", window=math.nan)


def test_plot_runs_draws_each_run_from_its_csv():
    runs = {"a": _rows(1.0), "b": _rows(3.0)}
    fig = plot_runs(runs, ["val/mse", "train/loss"])
    try:
        val_ax, train_ax = fig.axes[:2]
        assert val_ax.get_title() == "val/mse" and train_ax.get_title() == "train/loss"
        for ax, key in ((val_ax, "val/mse"), (train_ax, "train/loss")):
            assert [line.get_label() for line in ax.lines] == ["a", "b"]
            for line, rows in zip(ax.lines, runs.values(), strict=True):
                steps, values = metric_series(rows, key)
                assert list(line.get_xdata()) == steps and list(line.get_ydata()) == values
            assert ax.get_yscale() == "log"  # every value is positive
    finally:
        fig.clf()


def test_only_panels_the_window_averaged_say_so():
    """val/mse is logged every 100 steps: a 50-step window leaves it as it is, and its title
    must not claim a mean; train/loss, every 10 steps, is averaged."""
    runs = {"a": _rows(1.0), "b": _rows(3.0)}
    fig = plot_runs(runs, ["val/mse", "train/loss"], window=50)
    try:
        val_ax, train_ax = fig.axes[:2]
        assert val_ax.get_title() == "val/mse"
        assert train_ax.get_title() == "train/loss (trailing mean over 50 steps)"
        for line, rows in zip(val_ax.lines, runs.values(), strict=True):
            assert list(line.get_ydata()) == metric_series(rows, "val/mse")[1]
    finally:
        fig.clf()


def test_plot_runs_keeps_a_linear_axis_for_values_at_or_below_zero():
    rows = [{"step": "1", "m": "-0.5"}, {"step": "2", "m": "0.5"}]
    fig = plot_runs({"r": rows}, ["m"])
    assert fig.axes[0].get_yscale() == "linear"


def test_plot_runs_names_a_missing_metric_and_what_there_is():
    with pytest.raises(ValueError, match=r"'val/acc'.*train/loss, val/mse"):
        plot_runs({"a": _rows(1.0)}, ["val/acc"])


def test_cli_labels_runs_by_config_name_and_seed(tmp_path, monkeypatch, capsys):
    first = _write_run(tmp_path / "runs" / "toy" / "v1", "toy", 0, _rows(1.0))
    second = _write_run(tmp_path / "runs" / "toy" / "v2", "toy", 0, _rows(2.0))
    third = _write_run(tmp_path / "runs" / "toy" / "v3", "toy", 3, _rows(4.0))
    drawn = {}

    def capture(fig, path, *, dpi):
        drawn["labels"] = [line.get_label() for line in fig.axes[0].lines]
        drawn["title"] = fig.axes[0].get_title()
        drawn["path"] = path
        return path

    monkeypatch.setattr(plot_command, "save_figure", capture)
    out = tmp_path / "seeds.png"
    argv = ["plot", "curves", str(first), str(second), str(third / "metrics.csv"),
            "--metric", "train/loss", "--window", "50", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    # the same config and seed twice: the folder tells them apart
    assert drawn["labels"] == ["toy seed 0", "toy seed 0 (v2)", "toy seed 3"]
    assert drawn["title"] == "train/loss (trailing mean over 50 steps)"
    assert drawn["path"] == str(out) and str(out) in capsys.readouterr().out


def test_cli_writes_a_picture(tmp_path):
    matplotlib_image = pytest.importorskip("matplotlib.image")
    run = _write_run(tmp_path / "run", "toy", 0, _rows(1.0))
    out = tmp_path / "c.png"
    assert main(["plot", "curves", str(run), "--out", str(out), "--dpi", "40",
                 "--metric", "val/mse", "--metric", "train/loss"]) == 0  # fmt: skip
    height, width, _ = matplotlib_image.imread(out).shape
    assert width > 1.5 * height  # two panels side by side


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--metric", "val/acc"], ["--metric", "'val/acc'", "val/mse"]),
        (["NOPE"], ["RUN 'NOPE'", "metrics.csv"]),
        (["picture.png"], ["RUN 'picture.png'", "no metrics"]),
        (["other.csv"], ["RUN 'other.csv'", "no metrics"]),
    ],
)
def test_cli_errors_name_what_the_user_gave(tmp_path, monkeypatch, capsys, extra, words):
    monkeypatch.chdir(tmp_path)
    run = _write_run(tmp_path / "run", "toy", 0, _rows(1.0))
    (tmp_path / "picture.png").write_bytes(bytes(range(256)))  # not text
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")  # a CSV without the step column
    assert main(["plot", "curves", str(run), *extra]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--label", "only one"], "--label given 1 times for 2 runs"),
        (["--window", "-5"], "--window must be >= 0"),
    ],
)
def test_cli_usage_errors(tmp_path, capsys, extra, words):
    run = _write_run(tmp_path / "run", "toy", 0, _rows(1.0))
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", "curves", str(run), str(run), *extra])
    assert exit_info.value.code == 2 and words in capsys.readouterr().err
