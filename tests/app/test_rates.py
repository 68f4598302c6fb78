"""``ckconv eval --sampling-rates`` and ``ckconv sweep-rates``: rate parsing, the per-checkpoint
table against independent evaluations, the train x test matrix and its files."""

import csv
import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from ckconv.app.cli import main
from ckconv.app.config import load_config
from ckconv.app.evaluation import evaluate, load_model
from ckconv.app.rates import parse_rate, parse_rates, rate_label, rate_table, write_rate_table
from ckconv.app.resample import resample_input
from ckconv.app.training import train

# A CCNN with one block of 4 channels on the digits as 64-step sequences: trains in seconds.
SMALL = [
    "name=small",
    "task.name=digits",
    "model.name=ccnn",
    "model.hidden_channels=4",
    "model.num_blocks=1",
    "optim.lr=0.01",
    "optim.warmup_epochs=0",
    "trainer.max_epochs=1",
    "trainer.batch_size=32",
    "trainer.eval_batch_size=128",
    "trainer.limit_train_batches=8",
    "trainer.deterministic=true",
    "trainer.progress_bar=false",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rates")
    result = train(load_config(None, [*SMALL, f"trainer.out_dir={out}"]))
    return result.best_checkpoint


# ----------------------------------------------------------------------------- parsing


def test_rate_lists_accept_fractions_and_decimals():
    assert parse_rates("1,1/2,1/4,1/8") == [Fraction(1), Fraction(1, 2), Fraction(1, 4),
                                            Fraction(1, 8)]  # fmt: skip
    assert parse_rates(" 0.5 , 2,0.25") == [Fraction(1, 2), Fraction(2), Fraction(1, 4)]
    assert parse_rate("1/3") == Fraction(1, 3)
    assert parse_rate(0.1) == Fraction(1, 10)  # the float 0.1, read as the decimal
    assert [rate_label(r) for r in parse_rates("1,1/2,2,0.3")] == ["1", "1/2", "2", "3/10"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "comma-separated"),
        ("1,,1/2", "comma-separated"),
        ("1,", "comma-separated"),
        ("1,0", "positive"),
        ("-1/2", "positive"),
        ("1/0", "got '1/0'"),
        ("half", "got 'half'"),
        ("nan", "got 'nan'"),
        ("inf", "got 'inf'"),
        ("1,1/2,0.5", "listed twice"),
    ],
)
def test_bad_rate_lists_fail_naming_the_value(text, fragment):
    with pytest.raises(ValueError, match="--sampling-rates") as err:
        parse_rates(text)
    assert fragment in str(err.value)


def test_the_cli_reports_bad_rates_and_conflicting_options(checkpoint, capsys):
    code = main(["eval", "--checkpoint", str(checkpoint), "--sampling-rates", "1,zero"])
    assert code == 2
    assert "--sampling-rates must be a positive number or fraction like '1/2', got 'zero'" in (
        capsys.readouterr().err
    )
    code = main(["eval", "--checkpoint", str(checkpoint), "--rate", "2", "--sampling-rates", "1"])
    assert code == 2
    assert "either --rate or --sampling-rates" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--checkpoint", str(checkpoint), "--rate", "0"])
    assert exit_info.value.code == 2
    assert "argument --rate: must be a positive finite number, got '0'" in capsys.readouterr().err
    code = main(["sweep-rates", "--config", "demo_digits", "--train-rates", "1",
                 "--test-rates", "1,3/0"])  # fmt: skip
    assert code == 2
    assert "--test-rates must be a positive number or fraction like '1/2', got '3/0'" in (
        capsys.readouterr().err
    )


# ----------------------------------------------------------------------------- resampling


def test_sequence_resampling_keeps_the_training_grid():
    x = torch.randn(2, 9, dtype=torch.float64).float()
    up = resample_input(x, 3)
    assert up.shape == (2, 27)
    assert torch.equal(up[:, ::3], x)  # every input sample kept, the first at 0
    # in between: linear interpolation (float64 oracle)
    ref = x.double()[:, 0] + (x.double()[:, 1] - x.double()[:, 0]) / 3
    torch.testing.assert_close(up[:, 1].double(), ref, rtol=0, atol=1e-6)
    assert torch.equal(resample_input(up, Fraction(1, 3)), x)  # and back with seq[::3]
    assert torch.equal(resample_input(x, 0.5), x[:, ::2])
    with pytest.raises(ValueError, match="positive"):
        resample_input(x, 0.0)


# ----------------------------------------------------------------------------- one checkpoint


def test_table_has_one_row_per_rate_and_rate_one_is_plain_eval(checkpoint, tmp_path, capsys):
    table = rate_table(checkpoint, ["1", "1/2", "2"])
    assert table.rates == [1, Fraction(1, 2), 2]
    assert table.input_sizes == [(64,), (32,), (128,)]
    assert len(table.metrics) == 3
    assert table.metric == "test/acc"

    # oracle 1: `ckconv eval` without a rate
    assert main(["eval", "--checkpoint", str(checkpoint), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert table.metrics[0] == plain

    # oracle 2: the data subsampled by the registry (seq[::2]) and the model told rate 1/2
    registry = evaluate(checkpoint, rate=0.5, resample=False, overrides=[("task.subsample", 2)],
                        progress_bar=False)  # fmt: skip
    assert table.metrics[1] == registry
    # and `ckconv eval --rate 1/2` (fractions accepted there too)
    assert main(["eval", "--checkpoint", str(checkpoint), "--rate", "1/2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == table.metrics[1]

    paths = write_rate_table(table, tmp_path / "out")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["rate"] for r in rows] == ["1", "1/2", "2"]
    assert [r["input_size"] for r in rows] == ["64", "32", "128"]
    assert float(rows[1]["test/acc"]) == table.value("1/2")
    saved = json.loads(paths["json"].read_text())
    assert [r["metrics"] for r in saved["rows"]] == table.metrics
    _assert_png(paths["png"])


def test_cli_writes_the_table_next_to_the_run(checkpoint, capsys):
    code = main(["eval", "--checkpoint", str(checkpoint), "--sampling-rates", "1,0.25"])
    assert code == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert lines[0] == ["rate", "input", "acc", "(%)"]
    assert [row[:2] for row in lines[1:3]] == [["1", "64"], ["1/4", "16"]]
    run_dir = checkpoint.parent.parent
    for ext in ("csv", "json", "png"):
        assert (run_dir / f"rates_test_best.{ext}").is_file()
    saved = json.loads((run_dir / "rates_test_best.json").read_text())
    assert float(lines[1][2]) == pytest.approx(100 * saved["rows"][0]["metrics"]["test/acc"],
                                               abs=0.005)  # fmt: skip


# ----------------------------------------------------------------------------- the sweep


def test_sweep_fills_the_matrix_and_writes_its_files(tmp_path, capsys, accuracy_by_hand):
    torch.set_num_threads(1)
    code = main(["sweep-rates", "--config", "demo_digits", "--train-rates", "1,1/2",
                 "--test-rates", "1,1/2,1/4", "--out", str(tmp_path), *SMALL])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    (folder,) = (tmp_path / "small_rate_sweep").iterdir()
    saved = json.loads((folder / "rate_sweep.json").read_text())
    assert saved["train_rates"] == ["1", "1/2"]
    assert saved["test_rates"] == ["1", "1/2", "1/4"]
    assert saved["train_input_sizes"] == [[64], [32]]
    assert saved["test_input_sizes"] == [[64], [32], [16]]
    values = saved["values"]
    assert len(values) == 2 and all(len(row) == 3 for row in values)
    # oracle for every cell: the native test sequences subsampled by hand (seq[::n]), the model
    # told rate test/train, hits counted by hand
    for i, r in enumerate((Fraction(1), Fraction(1, 2))):
        model, _, bundle = load_model(saved["checkpoints"][i], [("task.subsample", 1)])
        for j, t in enumerate((Fraction(1), Fraction(1, 2), Fraction(1, 4))):
            n = int(1 / t)
            want = accuracy_by_hand(model, bundle.datasets["test"], rate=float(t / r),
                                    transform=lambda x, n=n: x[..., ::n])  # fmt: skip
            assert values[i][j] == pytest.approx(want, abs=1e-6), (i, j)
    # oracle: the diagonal is each run's own test accuracy at its training rate (after fit)
    for i, j in ((0, 0), (1, 1)):
        summary = json.loads((Path(saved["runs"][i]) / "summary.json").read_text())
        assert values[i][j] == summary["metrics"]["test/acc"]
    with (folder / "rate_sweep.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["train_rate", "test_rate=1", "test_rate=1/2", "test_rate=1/4"]
    assert [[float(v) for v in row[1:]] for row in rows[1:]] == values
    _assert_png(folder / "rate_sweep.png")
    assert "train \\ test acc (%)" in out


def test_sweep_refuses_train_rates_the_task_cannot_give(tmp_path, capsys):
    code = main(["sweep-rates", "--config", "demo_digits", "--train-rates", "1,1/2",
                 "--test-rates", "1", "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "task 'digits2d' has no subsample option" in capsys.readouterr().err
    code = main(["sweep-rates", "--config", "demo_digits", "--train-rates", "2/3",
                 "--test-rates", "1", "--out", str(tmp_path), "task.name=digits"])  # fmt: skip
    assert code == 2
    assert "--train-rates: 2/3 is not 1/n" in capsys.readouterr().err
    assert not (tmp_path / "demo_digits_rate_sweep").exists()  # nothing trained or written


def _assert_png(path: Path) -> None:
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] > 100 and img.size[1] > 100


@pytest.mark.slow
def test_full_sequence_sweep_keeps_its_accuracy_at_twice_the_training_rate(tmp_path):
    """CKConv Table 5 on the digit sequences (``ccnn_seq_digits``, ~2 min on one thread).

    Measured over seeds 0/1/2: 98.1/100/99.3 % trained and tested at 1, 98.5/97.0/98.5 % at 1/2,
    94.1/96.7/94.4 % trained at 1/2 and tested zero-shot at 1 (twice the training rate), and
    82.5/82.5/84.8 % trained at 1 and tested at 1/2.
    """
    from ckconv.app.rates import sweep_rates

    torch.set_num_threads(1)
    sweep = sweep_rates("ccnn_seq_digits", ["1", "1/2"], ["1", "1/2"], out=tmp_path)
    assert sweep.value(1, 1) > 0.95 and sweep.value("1/2", "1/2") > 0.95
    assert sweep.value("1/2", 1) > 0.9  # zero-shot at twice the training rate
    assert sweep.value(1, "1/2") > 0.75  # zero-shot at half the training rate


def test_blur_reaches_the_model_when_going_finer(checkpoint, capsys):
    from ckconv.app.resample import resample_input

    assert main(["eval", "--checkpoint", str(checkpoint), "--rate", "2", "--blur", "--json"]) == 0
    blurred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    sharp = evaluate(checkpoint, rate=2.0, progress_bar=False)
    # oracle: the reloaded model on the resampled test split, told rate=2 and blur=True
    model, _, bundle = load_model(checkpoint)
    ds = bundle.datasets["test"]
    x = torch.stack([resample_input(ds[i][0], 2.0) for i in range(len(ds))])
    y = torch.stack([torch.as_tensor(ds[i][1]) for i in range(len(ds))])
    model.eval()
    with torch.no_grad():
        logits = model(x, rate=2.0, blur=True)
    assert blurred["test/loss"] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-4
    )
    assert blurred["test/acc"] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert blurred["test/loss"] != sharp["test/loss"]  # the blur changed the kernels
    table = rate_table(checkpoint, ["2"], blur=True)
    assert table.metrics[0] == blurred
