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
        ("optim.warmup_epochs=-1", "optim.warmup_epochs"),
        ("model.in_channels=3", "model.in_channels"),  # set by the task
        ("optim=3", "optim"),
        ("optim.lr.x=3", "optim.lr"),
    ],
)
def test_bad_keys_and_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, ["trainer.max_epochs=2", override])
    assert key in str(info.value)


@pytest.mark.parametrize("epochs", [1, 5])
def test_shrinking_a_shipped_run_passes_the_config_checks(epochs):
    """The README's `--config ccnn_4_140_cifar10 optim.lr=0.02 trainer.max_epochs=5`: the
    config's 10 warm-up epochs are fitted to the run when it is built, not refused here."""
    cfg = load_config("ccnn_4_140_cifar10", ["optim.lr=0.02", f"trainer.max_epochs={epochs}"])
    assert cfg.trainer.max_epochs == epochs and cfg.optim.warmup_epochs == 10


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


def _documented_bundle(cfg):
    """A task bundle for checking a config's model option *names* without the task's data (most
    are downloads): one item of the table's documented input shape, and a target of the kind the
    table's objective trains on, read by the app's own ``describe_input`` / ``objective_for``.
    The sizes are those of the default options; the build tests below use real data."""
    import torch

    from ckconv.app.tasks import TaskBundle, describe_input, objective_for
    from ckconv.data.registry import TASKS

    info = TASKS[cfg.task.name]
    tokens = info.vocab_size is not None
    x = torch.zeros(info.shape, dtype=torch.int64 if tokens else torch.float32)
    length = info.shape[-1]
    y = {
        "classification": torch.tensor(0),
        "binary_auc": torch.tensor(0),
        "per_step": torch.zeros(length, dtype=torch.int64),
        "language_model": torch.zeros(length, dtype=torch.int64),
        "regression": torch.zeros(1),
        "per_step_regression": torch.zeros(1, length),
    }[info.objective]
    spec = describe_input(x, y, cfg.task.name)
    objective = objective_for(info.objective, spec, info.num_classes, cfg.task.name)
    out = objective.num_classes if objective.classification else spec.target_shape[0]
    vocab = info.vocab_size if tokens else None
    return TaskBundle(cfg.task.name, {}, spec, objective, vocab, out, "default")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_are_valid(name):
    """Every shipped config parses, and its task and model options are options of its task and
    arguments of its model (a misspelt one fails: see the tests above)."""
    from ckconv.app.tasks import model_kwargs
    from ckconv.data.registry import TASKS

    cfg = load_config(CONFIG_DIR / f"{name}.yaml")
    assert set(cfg.task.options) - {"weighting"} <= TASKS[cfg.task.name].options
    kwargs = model_kwargs(cfg, _documented_bundle(cfg))
    assert kwargs["out_channels"] == (TASKS[cfg.task.name].num_classes or 1)


def _listops_root(root):
    """Three ListOps files in the released .tsv format (the task's real loader reads them)."""
    d = root / "listops-1000"
    d.mkdir(parents=True, exist_ok=True)
    rows = "Source\tTarget\n" + "( [MAX 1 2 ] )\t2\n[MIN 3 4 ]\t3\n" * 8
    for split in ("train", "val", "test"):
        (d / f"basic_{split}.tsv").write_text(rows)
    return root


def _build(name, tmp_path):
    """The model of a shipped config, with the sizes its real task pipeline reads off real items."""
    from ckconv.app.tasks import build_model_from_config, build_task

    extra = []
    if "lra_listops" in name:
        extra = [f"task.root={_listops_root(tmp_path)}"]
    cfg = load_config(CONFIG_DIR / f"{name}.yaml", extra)
    bundle = build_task(cfg)
    model = build_model_from_config(cfg, bundle)
    return sum(p.numel() for p in model.parameters()), bundle


# One config per model family / input kind whose data is offline (generated, in scikit-learn or
# in the aeon wheel) or fabricated here: sequences, images, per-step outputs, token ids, a mask
# channel, timestamps, points.
BUILD_FAST = ["ckcnn_seq_digits", "demo_digits", "ckcnn_copy_memory_100",
              "ccnn_4_140_lra_listops", "ckcnn_japanese_vowels_drop30",
              "ckcnn_japanese_vowels_drop30_timestamps", "point_ccnn_shapes",
              "hyena_associative_recall"]  # fmt: skip
_OFFLINE = {"digits", "digits2d", "copy_memory", "adding_problem", "japanese_vowels",
            "basic_motions", "shapes", "shapes_voxel", "lra_listops",
            "associative_recall"}  # fmt: skip


@pytest.mark.parametrize("name", BUILD_FAST)
def test_shipped_configs_build_their_model(name, tmp_path):
    n, bundle = _build(name, tmp_path)
    assert n > 0
    x = bundle.datasets["train"][0][0]
    x = x[0] if bundle.spec.timestamps else x
    assert bundle.spec.in_channels == (1 if bundle.spec.tokens else x.shape[0])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    sorted(n for n in set(SHIPPED) - set(BUILD_FAST)
           if load_config(CONFIG_DIR / f"{n}.yaml").task.name in _OFFLINE),
)  # fmt: skip
def test_all_offline_shipped_configs_build_their_model(name, tmp_path):
    assert _build(name, tmp_path)[0] > 0


def test_listing_commands(capsys):
    assert main(["configs"]) == 0
    names = capsys.readouterr().out.split()
    assert names == SHIPPED and "demo_digits" in names
    assert main(["data", "list"]) == 0
    assert "digits2d" in capsys.readouterr().out
