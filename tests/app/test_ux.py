"""One vocabulary across the commands: a checkpoint argument takes a file or a run folder,
metrics carry the split they were measured on, accuracies print as percentages, rate tables are
never overwritten, ``--rate`` and ``--sampling-rates`` read rates by the same rule, and a rate
that a model cannot take is refused in one line."""

import io
import json
import re
from pathlib import Path

import pytest
import torch

from ckconv.app.callbacks import progress_bars_wanted
from ckconv.app.cli import main
from ckconv.app.config import load_config
from ckconv.app.datamodule import collate_fn
from ckconv.app.evaluation import load_model
from ckconv.app.module import split_batch
from ckconv.app.training import train

# conftest's tiny digits run, one epoch
ONE_EPOCH = [
    "name=ux",
    "task.name=digits",
    "model.hidden_channels=4",
    "model.num_blocks=1",
    "optim.warmup_epochs=1",
    "trainer.max_epochs=1",
    "trainer.batch_size=32",
    "trainer.eval_batch_size=256",
    "trainer.limit_train_batches=4",
    "trainer.progress_bar=false",
]


def _json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ux")
    return train(load_config(None, [*ONE_EPOCH, f"trainer.out_dir={out}"])).run_dir


def test_a_run_folder_is_its_best_checkpoint_for_every_command(run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--json"]) == 0
    by_folder = _json(capsys.readouterr().out)
    best = run / "checkpoints" / "best.ckpt"
    assert main(["eval", "--checkpoint", str(best), "--json"]) == 0
    assert _json(capsys.readouterr().out) == by_folder
    assert main(["eval", "--checkpoint", str(run), "--sampling-rates", "1", "--json"]) == 0
    assert _json(capsys.readouterr().out)["rows"][0]["metrics"] == by_folder
    assert main(["plot", "kernels", "--checkpoint", str(run), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "kernels.png").is_file()


def test_a_folder_without_checkpoints_is_refused_in_one_line(tmp_path, capsys):
    for argv in (
        ["eval", "--checkpoint", str(tmp_path)],
        ["plot", "kernels", "--checkpoint", str(tmp_path)],
        ["train", "--resume", str(tmp_path)],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(tmp_path) in err, err
        assert "checkpoints/last.ckpt" in err and argv[1] in err, err


def test_metrics_are_named_after_their_split_and_accuracies_print_as_percent(
    run, capsys, accuracy_by_hand
):
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--split", "val", "--json"]) == 0
    metrics = _json(capsys.readouterr().out)
    assert set(metrics) == {"val/acc", "val/loss"}
    # oracle: the validation items' hits counted by hand
    model, _, bundle = load_model(run)
    assert metrics["val/acc"] == pytest.approx(
        accuracy_by_hand(model, bundle.datasets["val"]), abs=1e-6
    )
    assert main(["eval", "--checkpoint", str(run), "--split", "val"]) == 0
    lines = dict(line.split(": ") for line in capsys.readouterr().out.strip().splitlines())
    assert lines["val/acc"] == f"{100 * metrics['val/acc']:.2f} %"
    assert lines["val/loss"] == f"{metrics['val/loss']:.4f}"
    # the rate table of the val split names its metric the same way
    assert main(["eval", "--checkpoint", str(run), "--split", "val", "--sampling-rates", "1",
                 "--json"]) == 0  # fmt: skip
    table = _json(capsys.readouterr().out)
    assert table["metric"] == "val/acc" and table["rows"][0]["metrics"] == metrics


def test_rerunning_a_rate_table_keeps_the_earlier_files(run, capsys):
    argv = ["eval", "--checkpoint", str(run), "--sampling-rates", "1,1/2"]
    assert main(argv) == 0
    first = {ext: (run / f"rates_test_best.{ext}").read_bytes() for ext in ("csv", "json")}
    assert main(argv) == 0
    out = capsys.readouterr().out
    for ext in ("csv", "json", "png"):
        assert (run / f"rates_test_best-2.{ext}").is_file()
        assert f"rates_test_best-2.{ext}" in out
    assert {ext: (run / f"rates_test_best.{ext}").read_bytes() for ext in first} == first


# ----------------------------------------------------------------------------- rate rules


@pytest.fixture(scope="module")
def timestamp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ux_ts")
    cfg = load_config(
        "ckcnn_japanese_vowels_drop50_timestamps",
        ["model.hidden_channels=4", "model.num_blocks=1", "trainer.max_epochs=1",
         "trainer.limit_train_batches=2", "trainer.eval_batch_size=512",
         "trainer.progress_bar=false", f"trainer.out_dir={out}"],
    )  # fmt: skip
    return train(cfg).run_dir


def test_rate_and_sampling_rates_take_the_same_rates_on_timestamped_data(timestamp_run, capsys):
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(timestamp_run), "--rate", "1/2", "--json"]) == 0
    half = _json(capsys.readouterr().out)
    assert main(["eval", "--checkpoint", str(timestamp_run), "--sampling-rates", "1,1/2",
                 "--json"]) == 0  # fmt: skip
    rows = _json(capsys.readouterr().out)["rows"]
    assert rows[1]["rate"] == "1/2" and rows[1]["metrics"] == half
    # a rate the data cannot take is refused the same way by both
    assert main(["eval", "--checkpoint", str(timestamp_run), "--rate", "2"]) == 2
    one = capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(timestamp_run), "--sampling-rates", "1,2"]) == 2
    other = capsys.readouterr().err
    assert "rate 2" in one and "rate 2" in other
    assert len(one.strip().splitlines()) == 1 and len(other.strip().splitlines()) == 1


def test_a_point_cloud_checkpoint_refuses_a_rate_in_one_line(tmp_path, capsys):
    cfg = load_config(
        "point_ccnn_shapes",
        ["task.num_points=32", "task.train_size=24", "task.val_size=8", "task.test_size=8",
         "task.classes=2", "model.num_neighbors=4", "trainer.max_epochs=1",
         "trainer.batch_size=8", "trainer.progress_bar=false", f"trainer.out_dir={tmp_path}"],
    )  # fmt: skip
    run = train(cfg).run_dir
    # without a progress bar (and with stdout not a terminal) one line per epoch
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("epoch ")]
    assert len(lines) == 1 and re.fullmatch(
        r"epoch 1/1  step 3  train/loss_epoch \d+\.\d{4}  val/acc \d+\.\d\d %  "
        r"val/loss \d+\.\d{4}  \(\d+\.\d s\)",
        lines[0],
    ), lines
    for argv in (["--rate", "2"], ["--sampling-rates", "1,2"]):
        assert main(["eval", "--checkpoint", str(run), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert argv[0] in err and "point-cloud model" in err and "task.num_points=64" in err
    # what the message proposes works: the same model on denser clouds
    assert main(["eval", "--checkpoint", str(run), "task.num_points=64", "--json"]) == 0
    printed = _json(capsys.readouterr().out)["test/acc"]
    # the oracle: the rebuilt model on the whole 64-point test split at once, counted by hand
    model, _, bundle = load_model(run, [("task.num_points", 64)])
    test = bundle.datasets["test"]
    x, keywords, y = split_batch(collate_fn(bundle.collate)([test[i] for i in range(len(test))]))
    assert x.shape[-1] == 64
    with torch.no_grad():
        hand = float((model(x, **keywords).argmax(1) == y).double().mean())
    assert printed == pytest.approx(hand, abs=1e-6)


def test_progress_bars_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_bars_wanted(True, Terminal())
    assert not progress_bars_wanted(True, io.StringIO())  # redirected to a file or a pipe
    assert not progress_bars_wanted(False, Terminal())
