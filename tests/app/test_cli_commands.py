"""Every subcommand the README and docs name is reachable through `ckconv`."""

import pytest

from ckconv.app.cli import main


@pytest.mark.parametrize(
    "argv", [["export", "--help"], ["plot", "kernels", "--help"], ["fit-kernel", "--help"]]
)
def test_subcommands_are_wired(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: ckconv" in capsys.readouterr().out


def test_fit_kernel_runs_through_the_cli(tmp_path, capsys):
    code = main(
        [
            "fit-kernel",
            "--targets",
            "step",
            "--nets",
            "siren",
            "--length",
            "64",
            "--steps",
            "5",
            "--out",
            str(tmp_path),
            "--dpi",
            "30",
        ]
    )
    assert code == 0
    assert (tmp_path / "fit_kernel.png").exists() and (tmp_path / "fit_kernel.csv").exists()
    assert "step" in capsys.readouterr().out


def test_export_reports_a_missing_checkpoint(tmp_path):
    code = main(
        [
            "export",
            "--checkpoint",
            str(tmp_path / "nope.ckpt"),
            "--format",
            "pt2",
            "--out",
            str(tmp_path / "m.pt2"),
        ]
    )
    assert code != 0
