"""metrics.csv: appends, header growth, resume keeps exactly the rows before the checkpoint."""

from ckconv.app.csvlog import ResumableCSVLogger, read_metrics


def _log(logger, rows):
    for step, metrics in rows:
        logger.log_metrics(metrics, step=step)
        logger.save()


def test_header_grows_and_rows_append(tmp_path):
    path = tmp_path / "metrics.csv"
    log = ResumableCSVLogger(path)
    _log(log, [(0, {"train/loss": 1.0}), (1, {"train/loss": 0.5}), (1, {"val/acc": 0.25})])
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == ["0", "1", "1"]
    assert rows[2]["val/acc"] == "0.25" and rows[0]["val/acc"] == ""
    assert path.read_text().splitlines()[0] == "step,train/loss,val/acc"


def test_resume_keeps_rows_logged_before_the_checkpoint_step(tmp_path):
    path = tmp_path / "metrics.csv"
    log = ResumableCSVLogger(path)
    _log(log, [(s, {"train/loss": float(s)}) for s in range(6)])
    with path.open("a") as f:
        f.write("9,0.12")  # a line torn by a kill
    resumed = ResumableCSVLogger(path, keep_before_step=4)
    assert [r["step"] for r in read_metrics(path)] == ["0", "1", "2", "3"]
    _log(resumed, [(4, {"train/loss": 4.0})])
    assert [r["step"] for r in read_metrics(path)] == ["0", "1", "2", "3", "4"]


def test_a_fresh_run_replaces_an_old_file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,x\n0,1\n")
    ResumableCSVLogger(path)
    assert not path.exists()
