"""The model registry (what each model takes and accepts) and checkpoints that rebuild their
model: reload round trips, wrapper prefixes, bad files."""

from __future__ import annotations

import doctest
import inspect
import pickle

import pytest
import torch

import ckconv.models.checkpoint as checkpoint_module
import ckconv.models.registry as registry_module
from ckconv.models import (
    MODEL_NAMES,
    MODELS,
    CheckpointError,
    ModelOptionError,
    ModelSpec,
    PointCCNN,
    build_model,
    load_checkpoint,
    model_entry,
    save_checkpoint,
)

# Tiny arguments of every registered model (sizes only; each model's own defaults otherwise).
TINY = {
    "ccnn": {"in_channels": 2, "out_channels": 3, "input_size": 12, "hidden_channels": 4,
             "num_blocks": 1, "kernel_hidden": 4, "mask_init_sigma": 0.3},
    "ckcnn": {"in_channels": 2, "out_channels": 3, "input_size": 12, "hidden_channels": 4,
              "kernel_hidden": 4},
    "tcn": {"in_channels": 2, "out_channels": 3, "hidden_channels": 4, "num_levels": 2},
    "gru": {"in_channels": 2, "out_channels": 3, "hidden_size": 4},
    "lstm": {"in_channels": 2, "out_channels": 3, "hidden_size": 4},
    "resnet": {"in_channels": 2, "out_channels": 3, "data_dim": 1, "hidden_channels": 4,
               "num_blocks": 1},
    "hyena": {"in_channels": 2, "out_channels": 3, "input_size": 12, "hidden_channels": 4,
              "num_blocks": 1, "filter_hidden": 4},
    "point_ccnn": {"in_channels": 3, "out_channels": 3, "hidden_channels": 4, "num_blocks": 1,
                   "kernel_hidden": 4, "num_neighbors": 4},
}  # fmt: skip


def test_every_registered_model_has_tiny_arguments_here():
    assert set(TINY) == set(MODEL_NAMES)


def _input(name: str, kind: str) -> tuple[dict, tuple, dict]:
    """(extra build kwargs, forward args, forward kwargs) for a model of ``name`` on ``kind``."""
    if kind == "tokens":
        return {"vocab_size": 7}, (torch.randint(0, 7, (2, 12)),), {}
    if kind == "timestamps":
        times = torch.tensor([[0.0, 2.0, 5.0, 11.0]] * 2)
        mask = torch.ones(2, 4, dtype=torch.bool)
        return {}, (torch.randn(2, 2, 4),), {"times": times, "mask": mask, "weighting": "none"}
    if kind == "points":
        return {}, (torch.randn(2, 3, 10),), {}
    dims = int(kind[4])
    extra = {"data_dim": dims} if "data_dim" in model_entry(name).options else {}
    if "input_size" in model_entry(name).options:
        extra["input_size"] = (12, 5, 4)[:dims] if dims > 1 else 12
    return extra, (torch.randn(2, 2, *(12, 5, 4)[:dims]),), {}


CASES = [(name, kind) for name, entry in MODELS.items() for kind in sorted(entry.inputs)]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_each_declared_input_kind_runs(name, kind):
    extra, args, kwargs = _input(name, kind)
    torch.manual_seed(0)
    model = build_model(name, **{**TINY[name], **extra}).eval()
    with torch.no_grad():
        out = model(*args, **kwargs)
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_declared_input_kinds_agree_with_the_class(name):
    entry = model_entry(name)
    forward = inspect.signature(entry.cls.forward).parameters
    assert entry.takes("tokens") == ("vocab_size" in entry.options)
    assert entry.takes("timestamps") == ({"times", "mask", "weighting"} <= set(forward))
    grids = {k for k in entry.inputs if k.startswith("grid")}
    if "data_dim" not in entry.options:
        assert grids <= {"grid1d"}


@pytest.mark.parametrize("name", [n for n, e in MODELS.items() if e.presets])
def test_presets_build_the_same_model_as_the_class_preset(name):
    entry = model_entry(name)
    for preset, values in entry.presets.items():
        assert set(values) <= set(entry.options), preset
    sizes = {"in_channels": 3, "out_channels": 4}
    if "input_size" in entry.options:
        sizes["input_size"] = 16
    preset = sorted(entry.presets)[0]
    via_registry = build_model(name, preset=preset, **sizes, hidden_channels=8)
    via_class = entry.cls.preset(preset, **sizes, hidden_channels=8)
    assert [p.shape for p in via_registry.parameters()] == [p.shape for p in via_class.parameters()]
    assert sum(p.numel() for p in via_registry.parameters()) > 0


def test_option_errors_name_the_option():
    with pytest.raises(ModelOptionError, match=r"'hidden_chanels' is not an option of model "
                       r"'ccnn' .*did you mean 'hidden_channels'") as info:  # fmt: skip
        build_model("ccnn", in_channels=1, out_channels=2, input_size=8, hidden_chanels=4)
    assert info.value.option == "hidden_chanels"
    with pytest.raises(ModelOptionError, match=r"'kind' is set by the model name 'gru'") as info:
        build_model("gru", in_channels=1, out_channels=2, kind="lstm")
    assert info.value.option == "kind"
    with pytest.raises(ModelOptionError, match="unknown ccnn preset 'ccnn_9'") as info:
        build_model("ccnn", preset="ccnn_9", in_channels=1, out_channels=2, input_size=8)
    assert info.value.option == "preset"
    with pytest.raises(ModelOptionError, match="'preset' is not an option of model 'tcn'"):
        build_model("tcn", preset="x", in_channels=1, out_channels=2)
    with pytest.raises(ValueError, match=r"unknown model 'cnn' \(did you mean 'ccnn'\?\)"):
        build_model("cnn")
    assert isinstance(build_model("LSTM", **TINY["lstm"]).rnn, torch.nn.LSTM)


# ----------------------------------------------------------------------------- checkpoints
def _outputs(name, model):
    torch.manual_seed(3)
    _, args, kwargs = _input(name, sorted(MODELS[name].inputs)[0])
    with torch.no_grad():
        return model(*args, **kwargs)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_then_load_gives_identical_weights_and_outputs(name, tmp_path):
    extra, _, _ = _input(name, sorted(MODELS[name].inputs)[0])
    spec = ModelSpec(name, {**TINY[name], **extra})
    torch.manual_seed(1)
    model = spec.build().eval()
    with torch.no_grad():  # trained weights differ from any fresh initialisation
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_checkpoint(tmp_path / "m.ckpt", model, spec)
    torch.manual_seed(99)
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    want = model.state_dict()
    got = loaded.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    torch.testing.assert_close(_outputs(name, loaded), _outputs(name, model), rtol=0, atol=0)


def test_wrapper_prefixes_are_stripped(tmp_path):
    spec = ModelSpec("ckcnn", TINY["ckcnn"])
    torch.manual_seed(2)
    model = spec.build().eval()
    for prefix in ("model.", "module.", "_orig_mod.", "model.module._orig_mod."):
        state = {prefix + k: v for k, v in model.state_dict().items()}
        state["loss_scale"] = torch.ones(1)  # other entries of a wrapper's state are ignored
        path = tmp_path / "w.ckpt"
        torch.save({"model_spec": spec.to_dict(), "state_dict": state}, path)
        loaded = load_checkpoint(path)
        torch.testing.assert_close(_outputs("ckcnn", loaded), _outputs("ckcnn", model))


def test_spec_round_trips_plain_values_and_refuses_others():
    spec = ModelSpec("CCNN", {**TINY["ccnn"], "input_size": (6, 5), "data_dim": 2})
    assert spec.name == "ccnn"
    back = ModelSpec.from_dict(spec.to_dict())
    assert back == spec and back.kwargs["input_size"] == (6, 5)
    with pytest.raises(TypeError, match=r"kwargs.kernel_net: a model spec stores plain values"):
        ModelSpec("ccnn", {**TINY["ccnn"], "kernel_net": torch.nn.Linear(1, 1)})
    with pytest.raises(ModelOptionError, match="hidden"):
        ModelSpec("ccnn", {"hidden": 3})


def test_bad_files_fail_in_one_line_naming_the_file(tmp_path):
    spec = ModelSpec("tcn", TINY["tcn"])
    good = save_checkpoint(tmp_path / "good.ckpt", spec.build(), spec)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "text.ckpt").write_text("not a checkpoint\n")
    (tmp_path / "list.ckpt").write_bytes(pickle.dumps([1, 2]))
    torch.save([torch.ones(1)], tmp_path / "tensors.ckpt")
    for name, words in [
        ("truncated.ckpt", "not a loadable checkpoint with weights_only=True"),
        ("text.ckpt", "not a loadable checkpoint with weights_only=True"),
        ("tensors.ckpt", "not a checkpoint (a list, not a dict)"),
    ]:
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / name}: {words}"), message
        assert "\n" not in message
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt' does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")
    # no spec: the message says how to rebuild it
    torch.save({"state_dict": spec.build().state_dict()}, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match=r"no model_spec inside .*ckconv eval/export/plot"):
        load_checkpoint(tmp_path / "old.ckpt")
    # a newer format, a spec whose weights do not fit
    newer = {**spec.to_dict(), "format_version": 99}
    torch.save({"model_spec": newer, "state_dict": {}}, tmp_path / "new.ckpt")
    with pytest.raises(CheckpointError, match="format_version 99 is not one this ckconv reads"):
        load_checkpoint(tmp_path / "new.ckpt")
    wider = ModelSpec("tcn", {**TINY["tcn"], "hidden_channels": 5}).to_dict()
    torch.save({"model_spec": wider, "state_dict": spec.build().state_dict()},
               tmp_path / "misfit.ckpt")  # fmt: skip
    with pytest.raises(
        CheckpointError, match=r"misfit\.ckpt: the weights do not fit .*size mismatch"
    ):
        load_checkpoint(tmp_path / "misfit.ckpt")
    with pytest.raises(CheckpointError, match="do not fit"):
        save_checkpoint(tmp_path / "x.ckpt", spec.build(), ModelSpec("tcn", wider["kwargs"]))
    assert not (tmp_path / "x.ckpt").exists()


def test_model_files_of_the_old_deploy_save_model_still_load(tmp_path):
    # the format ckconv.deploy.save_model wrote: {"model_config": {"name", **kwargs}, ...}
    torch.manual_seed(4)
    model = PointCCNN(**TINY["point_ccnn"]).eval()
    config = {"name": "point_ccnn", **TINY["point_ccnn"]}
    torch.save({"model_config": config, "model_state": model.state_dict()}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    torch.testing.assert_close(
        _outputs("point_ccnn", loaded), _outputs("point_ccnn", model), rtol=0, atol=0
    )


def test_docstring_examples_run():
    for module in (registry_module, checkpoint_module):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted >= 3 and result.failed == 0, module.__name__


def test_checkpoint_from_task_weighting_era_keeps_its_density_weighting(tmp_path):
    """``ckconv train`` checkpoints written while ``weighting`` was ``task.weighting`` store model
    kwargs without it; the loader reads it from their run config, so a density-trained model is
    not rebuilt as an unweighted one (the outputs on irregular timestamps would differ)."""
    from ckconv.models import ModelSpec, load_checkpoint
    from ckconv.models.checkpoint import read_checkpoint, save_checkpoint

    kwargs = {"in_channels": 2, "out_channels": 3, "input_size": 16, "hidden_channels": 4}
    torch.manual_seed(0)
    trained = ModelSpec("ckcnn", {**kwargs, "weighting": "density"}).build().eval()
    path = save_checkpoint(tmp_path / "old.ckpt", trained, ModelSpec("ckcnn", kwargs))
    contents = read_checkpoint(path)
    contents["ckconv"] = {"config": {"task": {"weighting": "density"}}}
    torch.save(contents, path)

    x = torch.randn(2, 2, 16)
    times = torch.sort(torch.rand(2, 16) * 15, dim=-1).values
    unweighted = ModelSpec("ckcnn", kwargs).build().eval()
    unweighted.load_state_dict(trained.state_dict())
    with torch.no_grad():
        expected = trained(x, times=times)
        assert not torch.allclose(unweighted(x, times=times), expected)  # the cases differ
        assert torch.equal(load_checkpoint(path)(x, times=times), expected)
