"""Typed task facts: what a task is comes from its table entry (objective, variable length,
accepted options), and each metric knows which direction is better."""

import pytest
import torch

from ckconv.app.config import ConfigError, load_config
from ckconv.app.metrics import METRICS, metric_of
from ckconv.app.tasks import build_task, describe_input, objective_for
from ckconv.data.registry import TASKS


def test_metric_directions_match_what_they_measure():
    # accuracy and AUROC count right answers; bits per character, squared error and loss count
    # mistakes
    assert {name: m.mode for name, m in METRICS.items()} == {
        "acc": "max", "auroc": "max", "bpc": "min", "mse": "min", "loss": "min",
        "loss_epoch": "min",
    }  # fmt: skip
    assert metric_of("val/acc").mode == "max" and metric_of("train/loss").mode == "min"
    assert metric_of("test/acc").format(0.5) == "50.00" and metric_of("mse").format(0.5) == "0.5000"


def test_a_monitor_the_app_does_not_log_is_a_config_error():
    with pytest.raises(ConfigError, match=r"trainer\.monitor: 'val/acuracy' is not a metric"):
        metric_of("val/acuracy")


@pytest.mark.parametrize(
    ("name", "objective", "metric", "mode"),
    [
        ("digits", "classification", "acc", "max"),
        ("copy_memory", "per_step", "acc", "max"),
        ("adding_problem", "regression", "mse", "min"),
        ("kernel_fitting", "per_step_regression", "mse", "min"),
    ],
)
def test_the_objective_is_the_table_entry(name, objective, metric, mode):
    assert TASKS[name].objective == objective
    opts = {"copy_memory": ["task.length=10", "task.num_train=4", "task.num_eval=2"],
            "adding_problem": ["task.length=10", "task.num_train=4", "task.num_eval=2"],
            "kernel_fitting": ["task.length=16"]}.get(name, [])  # fmt: skip
    bundle = build_task(load_config(None, [f"task.name={name}", *opts]))
    assert (bundle.objective.kind, bundle.objective.metric, bundle.objective.mode) == (
        objective,
        metric,
        mode,
    )


def test_the_paper_metrics_of_sepsis_and_ptb_come_from_the_table():
    # CKConv Table 4 scores sepsis by AUC; char-PTB is scored in bits per character
    assert TASKS["physionet_sepsis"].objective == "binary_auc"
    assert TASKS["char_ptb"].objective == "language_model"


def test_targets_that_contradict_the_objective_fail_naming_the_task():
    spec = describe_input(torch.zeros(1, 8), torch.tensor(3), "mine")  # an int class per item
    with pytest.raises(ConfigError, match="task 'mine': a regression task needs float"):
        objective_for("regression", spec, None, "mine")
    spec = describe_input(torch.zeros(1, 8), torch.zeros(1), "mine")  # a float value per item
    with pytest.raises(ConfigError, match="task 'mine': a classification task needs an int64"):
        objective_for("classification", spec, 10, "mine")


def test_variable_length_tasks_are_batched_padded():
    assert [n for n, t in TASKS.items() if t.variable_length] == ["japanese_vowels"]
    bundle = build_task(load_config(None, ["task.name=japanese_vowels"]))
    assert bundle.collate == "pad"
    lengths = {bundle.datasets["train"][i][0].shape[-1] for i in range(40)}
    assert len(lengths) > 1  # the fact the field states
    assert build_task(load_config(None, ["task.name=basic_motions"])).collate == "default"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_an_option_outside_the_table_is_rejected_before_any_file_is_read(name, tmp_path):
    with pytest.raises(TypeError, match="'no_such_option' is not an option of this task"):
        TASKS[name].factory(tmp_path / "empty", no_such_option=1)
    cfg = load_config(None, [f"task.name={name}", f"task.root={tmp_path}", "task.lenght=3"])
    with pytest.raises(ConfigError, match=rf"task\.lenght: not an option of task '{name}'"):
        build_task(cfg)


def test_a_close_option_name_is_suggested():
    cfg = load_config(None, ["task.name=copy_memory", "task.lenght=3"])
    with pytest.raises(ConfigError, match=r"did you mean task\.length\?"):
        build_task(cfg)


def test_only_sequence_tasks_take_the_subsample_option():
    takes = {n for n, t in TASKS.items() if "subsample" in t.options}
    assert {"smnist", "speech_raw", "character_trajectories", "digits"} <= takes
    assert not takes & {"cifar10", "digits2d", "stl10", "shapes", "lra_listops"}


def test_a_token_task_with_a_vocab_option_gives_the_model_its_own_vocabulary():
    """associative_recall's vocab_size option, not the table's default, sizes the embedding
    and the classes (a model built with the default would fail on ids >= 20)."""
    cfg = load_config(None, ["task.name=associative_recall", "task.vocab_size=30",
                             "task.length=21", "task.num_train=8"])  # fmt: skip
    bundle = build_task(cfg)
    assert (bundle.vocab_size, bundle.out_channels) == (30, 15)
    assert int(max(bundle.datasets["train"][i][0].max() for i in range(8))) >= 20


class _Answer(torch.nn.Module):
    """Per-step logits that say the given classes (a stand-in network with a known answer)."""

    def __init__(self, answer: torch.Tensor):
        super().__init__()
        self.answer = answer

    def forward(self, x):
        return torch.nn.functional.one_hot(self.answer, 10).to(x.dtype).transpose(1, 2) * 5.0


def test_copy_memory_accuracy_counts_the_recalled_digits_only():
    """CKConv Sec. 5 scores copy memory on the 10 recalled digits. A network right on every
    blank and wrong on every recalled digit is 0 %, not the (L+10)/(L+20) an accuracy over all
    steps would give; one wrong recalled digit out of 4 x 10 costs exactly 2.5 %."""
    from ckconv.app.module import TaskModule

    cfg = load_config(None, ["task.name=copy_memory", "task.length=30", "task.num_train=4"])
    bundle = build_task(cfg)
    assert bundle.objective.scored_steps == 10
    x = torch.stack([bundle.datasets["val"][i][0] for i in range(4)])
    y = torch.stack([bundle.datasets["val"][i][1] for i in range(4)])
    wrong = y.clone()
    wrong[:, -10:] = (y[:, -10:] % 8) + 1  # another digit in 1..8 at every recalled step
    for answer, expected in ((wrong, 0.0), (y, 1.0)):
        module = TaskModule(_Answer(answer), bundle.objective, cfg.optim)
        module._update_metric(module.val_metric, module.model(x), y, torch.tensor(0.0))
        assert module.val_metric.compute().item() == expected
    one_off = y.clone()
    one_off[2, -3] = (y[2, -3] % 8) + 1
    module = TaskModule(_Answer(one_off), bundle.objective, cfg.optim)
    module._update_metric(module.val_metric, module.model(x), y, torch.tensor(0.0))
    assert module.val_metric.compute().item() == pytest.approx(39 / 40)


def test_scored_steps_belongs_to_per_step_tasks():
    import dataclasses

    with pytest.raises(ValueError, match="scored_steps"):
        dataclasses.replace(TASKS["adding_problem"], scored_steps=3)
