"""Configs: strict keys and types, overrides, impossible sizes, the shipped experiment configs."""

import pytest
import yaml

from ckconv.app.cli import main
from ckconv.app.config import (
    CONFIG_DIR,
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config,
    find_config,
    list_configs,
    load_config,
    parse_overrides,
)
from ckconv.app.prepare import prepare

TINY = ["task.name=digits", "model.name=ccnn", "model.hidden_channels=4", "model.num_blocks=1",
        "trainer.max_epochs=1", "trainer.batch_size=16"]  # fmt: skip


def test_overrides_in_every_spelling():
    got = parse_overrides(["optim.lr=0.02", "--trainer.max_epochs", "3", "--seed=7",
                           "model.kernel_size=[3, 5]", "trainer.version=null"])  # fmt: skip
    assert got == [("optim.lr", 0.02), ("trainer.max_epochs", 3), ("seed", 7),
                   ("model.kernel_size", [3, 5]), ("trainer.version", None)]  # fmt: skip
    data = apply_overrides({"optim": {"lr": 1.0}}, got)
    assert data["optim"]["lr"] == 0.02 and data["model"]["kernel_size"] == [3, 5]


def test_resolved_config_round_trips_through_yaml():
    cfg = load_config(None, [*TINY, "optim.betas=[0.8, 0.9]", "task.seed=3"])
    again = config_from_dict(yaml.safe_load(dump_config(cfg)))
    assert again == cfg
    assert config_to_dict(again)["task"] == {"name": "digits", "root": None, "seed": 3}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optim.lrr=0.1", "optim.lrr"),
        ("trainr.max_epochs=2", "trainr"),
        ("optim.lr=fast", "optim.lr"),
        ("trainer.max_epochs=2.5", "trainer.max_epochs"),
        ("trainer.progress_bar=3", "trainer.progress_bar"),
        ("optim.optimizer=sgdd", "optim.optimizer"),
        ("optim.betas=[0.9]", "optim.betas"),
        ("optim.lr=-1", "optim.lr"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("optim.warmup_epochs=10", "optim.warmup_epochs"),  # >= max_epochs
        ("model.in_channels=3", "model.in_channels"),  # set by the task
        ("optim=3", "optim"),
        ("optim.lr.x=3", "optim.lr"),
    ],
)
def test_bad_keys_and_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, ["trainer.max_epochs=2", override])
    assert key in str(info.value)


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"did you mean 'optim\.lr'"):
        load_config(None, ["optim.lrr=0.1"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.hidden_chanels=8", "model.hidden_chanels"),  # not an argument of CCNN
        ("model.name=transformer", "model.name"),
        ("model.num_blocks=0", "model.num_blocks"),  # the model rejects it
        ("model.head=mean", "model.head"),  # copy memory needs per-step outputs
        ("task.lenght=50", "task.lenght"),
        ("task.name=smnist_typo", "task.name"),
        ("trainer.batch_size=4096", "trainer.batch_size"),  # more than the data with drop_last
    ],
)
def test_impossible_runs_fail_before_training_naming_the_key(override, key):
    base = ["task.name=copy_memory", "task.length=20", "task.num_train=64", "task.num_eval=16",
            "model.name=ccnn", "model.hidden_channels=4", "model.num_blocks=1",
            "trainer.drop_last=true"]  # fmt: skip
    cfg = load_config(None, [*base, override])
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    assert key in str(info.value)


def test_cli_reports_config_errors_with_exit_code_2(capsys):
    assert main(["train", "--config", "demo_digits", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "optim.lrr" in err and "config error" in err
    assert main(["train", "--config", "no_such_experiment"]) == 2


def test_print_config_shows_the_resolved_config(capsys):
    assert main(["train", "-c", "demo_digits", "--print-config", "optim.lr=0.5"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["optim"]["lr"] == 0.5 and data["task"]["name"] == "digits2d"


def test_config_files_are_found_by_path_or_name(tmp_path):
    assert find_config("demo_digits") == find_config("configs/demo_digits.yaml")
    own = tmp_path / "mine.yaml"
    own.write_text("name: mine\nseed: 3\n")
    assert load_config(own).seed == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2]\n")
    with pytest.raises(ConfigError, match="optim"):
        load_config(bad)


def test_defaults_are_a_valid_config():
    assert config_from_dict({}) == Config()


SHIPPED = list_configs()


def test_every_paper_experiment_has_a_config():
    expected = {
        "ckcnn_copy_memory_1000", "ckcnn_adding_problem_1000", "ckcnn_smnist", "ckcnn_pmnist",
        "ckcnn_scifar10", "ckcnn_character_trajectories", "ckcnn_speech_mfcc", "ckcnn_speech_raw",
        "ckcnn_physionet_sepsis", "ckcnn_char_ptb", "ccnn_4_140_smnist", "ccnn_6_380_cifar10",
        "ccnn_4_140_lra_listops", "ccnn_4_140_lra_pathfinder2d", "demo_digits",
    }  # fmt: skip
    assert expected <= set(SHIPPED)


def _bundle_from_registry(cfg):
    """The task bundle a config would get, from the registry's documented input shape (the
    datasets themselves are downloads that are not available here)."""
    from ckconv.app.tasks import InputSpec, TaskBundle, objective_for
    from ckconv.data.registry import TASKS

    info = TASKS[cfg.task.name]
    shape = info.shape
    opts = cfg.task.options
    if "length" in opts:  # generated tasks
        shape = (shape[0], opts["length"] + (20 if cfg.task.name == "copy_memory" else 0))
    if opts.get("drop_rate"):
        shape = (shape[0] + 1, *shape[1:])
    tokens = info.vocab_size is not None
    if tokens:  # (L,) token ids
        shape = (1, *shape)
    per_step = cfg.task.name in ("copy_memory", "char_ptb")
    spec = InputSpec(
        in_channels=shape[0],
        data_dim=len(shape) - 1,
        input_size=tuple(shape[1:]),
        tokens=tokens,
        target_shape=(shape[-1],) if per_step else (() if info.num_classes else (1,)),
        target_is_int=info.num_classes is not None,
    )
    objective = objective_for(cfg.task.name, spec, info.num_classes, info.vocab_size)
    out = objective.num_classes if objective.classification else 1
    vocab = info.vocab_size if tokens else None
    return TaskBundle(cfg.task.name, {}, spec, objective, vocab, out, "default")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_are_valid(name):
    """Every shipped config parses, and its model options are arguments of its model."""
    from ckconv.app.tasks import model_kwargs

    cfg = load_config(CONFIG_DIR / f"{name}.yaml")
    kwargs = model_kwargs(cfg, _bundle_from_registry(cfg))
    assert kwargs["out_channels"] >= 1


def _build(name):
    from ckconv.app.tasks import build_model_from_config

    cfg = load_config(CONFIG_DIR / f"{name}.yaml")
    model = build_model_from_config(cfg, _bundle_from_registry(cfg))
    return sum(p.numel() for p in model.parameters())


# One config per model family / input kind in the default run; all of them with -m slow.
BUILD_FAST = ["ckcnn_smnist", "ccnn_4_140_cifar10", "ckcnn_copy_memory_100",
              "ccnn_4_140_lra_listops", "ckcnn_character_trajectories_drop30"]  # fmt: skip


@pytest.mark.parametrize("name", BUILD_FAST)
def test_shipped_configs_build_their_model(name):
    assert _build(name) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(SHIPPED) - set(BUILD_FAST)))
def test_all_shipped_configs_build_their_model(name):
    assert _build(name) > 0


def test_listing_commands(capsys):
    assert main(["configs"]) == 0
    names = capsys.readouterr().out.split()
    assert names == SHIPPED and "demo_digits" in names
    assert main(["data", "list"]) == 0
    assert "digits2d" in capsys.readouterr().out
