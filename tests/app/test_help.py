"""The help of every command renders (exit 0, its own usage line), and every default a help
text states comes from the code: argparse's ``%(default)s`` or, for the demo's epochs, its
config, never a number typed a second time."""

import argparse

import pytest

from ckconv.app import cli, export_command, plot_command
from ckconv.app.cli import main
from ckconv.app.config import CONFIG_DIR, load_config


def _commands() -> list[list[str]]:
    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    argvs = []
    for name in sub.choices:
        argvs.append([name])
        if name == "plot":
            argvs += [["plot", "kernels"], ["plot", "curves"]]
        if name == "data":
            argvs += [["data", "list"], ["data", "synth-speech"]]
    return argvs


@pytest.mark.parametrize("argv", _commands(), ids=" ".join)
def test_every_command_renders_its_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    want = "usage: ckconv " + (" ".join(argv) if argv[0] != "data" or len(argv) > 1 else "data")
    assert first.startswith(want) or (
        argv == ["plot"] and first.startswith("usage: ckconv plot")
    ), first


def _parsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers = {f"ckconv {name}": p for name, p in sub.choices.items()}
    parsers["ckconv export"] = export_command._parser()
    parsers["ckconv plot kernels"] = plot_command._parser()
    parsers["ckconv plot curves"] = plot_command._curves_parser()
    return parsers


def test_stated_defaults_come_from_the_code():
    checked = 0
    for prog, parser in _parsers().items():
        for action in parser._actions:
            text = action.help or ""
            if "default" not in text or action.default in (None, argparse.SUPPRESS):
                continue
            assert "%(default)s" in text, f"{prog} {action.option_strings}: {text!r}"
            checked += 1
    assert checked >= 5


def test_the_demo_help_states_the_epochs_it_runs(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    epochs = load_config(CONFIG_DIR / "demo_digits.yaml").trainer.max_epochs
    assert f"(default: {epochs}," in " ".join(capsys.readouterr().out.split())


def test_eval_help_names_the_overrides(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "key=value" in out and "task.root=" in out


def test_plot_without_what_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plot"])
    assert exit_info.value.code == 2 and "ckconv plot kernels" in capsys.readouterr().err


def test_export_help_says_what_happens_for_point_models(capsys):
    """The points per cloud come from the checkpoint, the per-cloud normalisation goes into the
    artefact, --rate is not for them; task.* overrides point older checkpoints at their data."""
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "centring and scaling of point clouds) is included" in out
    assert "points per cloud (default: the training data's)" in out
    assert "models of point clouds have none" in out and "task.path=" in out
