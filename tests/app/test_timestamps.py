"""The training app on timestamped sequences (``task.route: timestamps``, SPEC 3.7): batches carry
values, times and a mask to the model; trained checkpoints reload; the timestamp route equals the
grid route when nothing is dropped."""

import copy

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from ckconv.app.config import ConfigError, config_from_dict, config_to_dict, load_config
from ckconv.app.datamodule import collate_fn
from ckconv.app.evaluation import evaluate, load_model
from ckconv.app.module import TaskModule, split_batch
from ckconv.app.prepare import prepare
from ckconv.app.tasks import build_model_from_config, build_task
from ckconv.app.training import train
from ckconv.data.transforms import PaddedBatch, TimestampBatch, resample_timestamps

TINY_JV = [
    "model.hidden_channels=4",
    "model.num_blocks=1",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.eval_batch_size=128",
    "trainer.log_every_n_steps=1",
    "trainer.progress_bar=false",
]


def _config(task: dict, model: dict | None = None) -> object:
    model = {"name": "ckcnn", "hidden_channels": 4, "num_blocks": 1, "norm": "layer",
             "dropout": 0.0, **(model or {})}  # fmt: skip
    return config_from_dict({"name": "t", "seed": 0, "task": task, "model": model})


def _batch(bundle, indices, split="train"):
    ds = bundle.datasets[split]
    return collate_fn(bundle.collate)([ds[i] for i in indices])


class KeepModel(Callback):
    """The network as the run's test pass used it."""

    def on_test_end(self, trainer, pl_module) -> None:
        self.model = copy.deepcopy(pl_module.model)


def test_timestamp_run_trains_reloads_and_evaluates_to_the_same_numbers(tmp_path):
    cfg = load_config(
        "ckcnn_japanese_vowels_drop50_timestamps",
        [*TINY_JV, "model.weighting=density", f"trainer.out_dir={tmp_path}"],
    )
    keep = KeepModel()
    result = train(cfg, extra_callbacks=[keep])
    assert result.best_checkpoint is not None

    # the checkpoint rebuilds the same network: identical outputs on a padded timestamp batch
    model, saved, bundle = load_model(result.best_checkpoint)
    assert bundle.collate == "timestamps" and saved.model.options["weighting"] == "density"
    batch = _batch(bundle, range(0, 370, 37), "test")
    assert isinstance(batch, TimestampBatch) and not batch.mask.all()  # unequal lengths
    x, keywords, _ = split_batch(batch)
    model.eval()
    keep.model.eval()
    with torch.no_grad():
        want = keep.model(x, **keywords)
        got = TaskModule(model, bundle.objective, saved.optim, config=config_to_dict(saved))(
            x, **keywords
        )
    assert torch.equal(got, want)
    # the weighting is part of the model: with another one the outputs differ
    with torch.no_grad(), pytest.warns(DeprecationWarning, match="pass weighting= to the"):
        assert not torch.allclose(model(x, **keywords, weighting="none"), want)

    # the run's test accuracy, counted by hand over the whole test split (oracle: no loader,
    # no torchmetrics; to 1e-6 as those keep float32)
    x, keywords, y = split_batch(_batch(bundle, range(len(bundle.datasets["test"])), "test"))
    with torch.no_grad():
        hits = keep.model(x, **keywords).argmax(1) == y
    assert result.metrics["test/acc"] == pytest.approx(float(hits.double().mean()), abs=1e-6)

    # `ckconv eval` reproduces the test accuracy of the run
    metrics = evaluate(result.best_checkpoint, progress_bar=False)
    assert metrics["test/acc"] == pytest.approx(result.metrics["test/acc"], abs=1e-6)

    # `ckconv eval --rate 1/2` keeps every second observed sample; the model must then see those
    # samples at their original times (independent oracle: no rate arithmetic involved)
    ds = bundle.datasets["test"]
    items = []
    for i in range(len(ds)):
        (values, times, mask), y = ds[i]
        kept = torch.nonzero(mask, as_tuple=True)[0][::2]
        items.append(((values[:, kept], times[kept], mask[kept]), y))
    batch = collate_fn("timestamps")(items)
    x, keywords, y = split_batch(batch)
    with torch.no_grad():
        want_acc = (model(x, **keywords).argmax(1) == y).double().mean()
    half = evaluate(result.best_checkpoint, rate=0.5, progress_bar=False)
    assert half["test/acc"] == pytest.approx(float(want_acc), abs=1e-6)
    with pytest.raises(ConfigError, match="rate 2: timestamped samples can only be resampled"):
        evaluate(result.best_checkpoint, rate=2.0, progress_bar=False)


def test_without_drops_the_timestamp_route_equals_the_grid_route_float64():
    # BasicMotions: fixed-length (6, 100) sequences, so the grid batches need no padding
    grid = build_task(_config({"name": "basic_motions"}))
    stamped = build_task(_config({"name": "basic_motions", "route": "timestamps"}))
    assert (grid.collate, stamped.collate) == ("default", "timestamps")
    assert grid.spec.input_size == stamped.spec.input_size == (100,)
    torch.manual_seed(0)
    model = build_model_from_config(_config({"name": "basic_motions"}), grid).double().eval()
    objective, optim = grid.objective, _config({"name": "basic_motions"}).optim
    indices = [0, 5, 17, 31]
    x_grid, kw_grid, y_grid = split_batch(_batch(grid, indices))
    x_ts, kw_ts, y_ts = split_batch(_batch(stamped, indices))
    assert kw_grid == {} and set(kw_ts) == {"times", "mask"} and torch.equal(y_grid, y_ts)
    assert torch.equal(kw_ts["times"][0], torch.arange(100.0))
    with torch.no_grad():
        want = model(x_grid.double())
        for weighting in ("none", "density"):  # density weights are 1 on the training grid
            cfg = _config({"name": "basic_motions"}, {"weighting": weighting})
            stamped_model = build_model_from_config(cfg, stamped).double().eval()
            stamped_model.load_state_dict(model.state_dict())
            module = TaskModule(stamped_model, objective, optim)
            kw = {"times": kw_ts["times"].double(), "mask": kw_ts["mask"]}
            got = module(x_ts.double(), **kw)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    # the times reach the model (stretched times change the outputs), and another weight does too
    with torch.no_grad():
        stretched = {"times": kw["times"] * 1.5, "mask": kw["mask"]}
        assert not torch.allclose(module(x_ts.double(), **stretched), want, atol=1e-3)
        stamped_model.head.linear.bias.add_(1.0)
        assert not torch.allclose(module(x_ts.double(), **kw), want, atol=1e-3)


def test_eval_rate_turns_timestamps_into_training_samples_float64():
    # a timestamp batch at half the rate (every 2nd sample, times in samples of that rate) with
    # eval_rate=1/2 and density weights equals the grid path at rate 1/2 (CKConv eq. 5 scaling)
    stamped = build_task(_config({"name": "basic_motions", "route": "timestamps"}))
    torch.manual_seed(1)
    cfg = _config({"name": "basic_motions"}, {"weighting": "density"})
    model = build_model_from_config(cfg, stamped).double().eval()
    ds = stamped.datasets["train"]
    items = [((resample_timestamps(ds[i][0], 0.5)), ds[i][1]) for i in (2, 9)]
    x, kw, _ = split_batch(collate_fn("timestamps")(items))
    assert torch.equal(kw["times"][0], torch.arange(50.0))
    module = TaskModule(model, stamped.objective, _config({}).optim, eval_rate="1/2")
    with torch.no_grad():
        got = module(x.double(), module.eval_rate, times=kw["times"].double(), mask=kw["mask"])
        want = model(x.double(), rate=0.5)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_resample_timestamps_keeps_every_nth_observed_sample():
    values = torch.arange(12.0).view(2, 6)
    times = torch.tensor([0.0, 1.0, 3.0, 4.0, 6.0, 6.0])
    mask = torch.tensor([True, True, True, True, True, False])
    v, t, m = resample_timestamps((values, times, mask), 1 / 2)
    assert v.tolist() == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
    assert t.tolist() == [0.0, 1.5, 3.0] and m.all()
    for rate in (2.0, 0.3, 0.0):
        with pytest.raises(ValueError, match="rate 1/n"):
            resample_timestamps((values, times, mask), rate)


def test_japanese_vowels_routes_describe_the_same_sequences():
    mask = build_task(_config({"name": "japanese_vowels", "drop_rate": 0.3}))
    stamped = build_task(
        _config({"name": "japanese_vowels", "drop_rate": 0.3, "route": "timestamps"})
    )
    # 12 channels (+ "observed" on the mask route); kernels cover the longest training sequence
    assert (mask.spec.in_channels, stamped.spec.in_channels) == (13, 12)
    longest = max(x.shape[-1] for x, _ in build_task(_config({"name": "japanese_vowels"}))
                  .datasets["train"])  # fmt: skip
    assert mask.spec.input_size == stamped.spec.input_size == (longest,)
    assert isinstance(_batch(mask, range(8)), PaddedBatch)
    # both kinds of batch reach a model built for them
    for bundle in (mask, stamped):
        model = build_model_from_config(_config({"name": "japanese_vowels"}), bundle)
        x, kw, _ = split_batch(_batch(bundle, range(8)))
        with torch.no_grad():
            assert model(x, **kw).shape == (8, 9)


def test_a_sequence_alone_or_in_a_padded_batch_gives_the_same_outputs():
    # norm="layer": padding enters no statistic, the head reads the last observed sample
    bundle = build_task(
        _config({"name": "japanese_vowels", "drop_rate": 0.5, "route": "timestamps"})
    )
    torch.manual_seed(2)
    model = build_model_from_config(_config({"name": "japanese_vowels"}), bundle).eval()
    x, kw, _ = split_batch(_batch(bundle, range(10)))
    assert not kw["mask"].all()
    with torch.no_grad():
        together = model(x, **kw)
        for i in range(10):
            alone = split_batch(_batch(bundle, [i]))
            torch.testing.assert_close(model(alone[0], **alone[1])[0], together[i])


@pytest.mark.parametrize("model", [{"name": "tcn", "hidden_channels": 4},
                                   {"name": "gru", "hidden_size": 4}])  # fmt: skip
def test_models_without_times_are_refused_with_a_clear_error(model):
    task = {"name": "japanese_vowels", "drop_rate": 0.3, "route": "timestamps"}
    cfg = config_from_dict({"task": task, "model": model})
    with pytest.raises(ConfigError, match=r"model\.name: .* cannot take sample times"):
        prepare(cfg)


def test_weighting_needs_the_timestamp_route():
    with pytest.raises(ConfigError, match=r"task\.weighting: 'density' .* task\.route"):
        build_task(_config({"name": "japanese_vowels", "weighting": "density"}))
    with pytest.raises(ConfigError, match=r"task\.weighting: expected one of"):
        build_task(_config({"name": "japanese_vowels", "route": "timestamps", "weighting": "x"}))
    grid = build_task(_config({"name": "japanese_vowels"}))
    with pytest.raises(ConfigError, match=r"model\.weighting: 'density' .* task\.route"):
        build_model_from_config(
            _config({"name": "japanese_vowels"}, {"weighting": "density"}), grid
        )
    stamped = build_task(_config({"name": "japanese_vowels", "route": "timestamps"}))
    with pytest.raises(
        ConfigError, match=r"model\.weighting: weighting must be one of 'none', 'de"
    ):
        build_model_from_config(
            _config({"name": "japanese_vowels"}, {"weighting": "mean"}), stamped
        )


def test_task_weighting_is_a_deprecated_name_of_model_weighting():
    task = {"name": "japanese_vowels", "route": "timestamps", "weighting": "density"}
    with pytest.warns(FutureWarning, match="model.weighting: density"):
        bundle = build_task(_config(task))
    # it overrides the model's (shipped configs say model.weighting: none)
    model = build_model_from_config(_config(task, {"weighting": "none"}), bundle)
    assert {m.weighting for m in model.modules() if hasattr(m, "weighting")} == {"density"}


def test_model_errors_name_the_config_key_from_the_errors_argument_field():
    # the model refuses the value in a typed error (ckconv.ArgumentError.argument): a model
    # argument becomes model.<argument>; no message text is parsed
    bundle = build_task(_config({"name": "japanese_vowels"}))
    with pytest.raises(ConfigError, match=r"^model\.dropout: dropout must be a number in \[0, 1\)"):
        build_model_from_config(_config({"name": "japanese_vowels"}, {"dropout": 1.5}), bundle)
    with pytest.raises(
        ConfigError, match=r"^model\.kernel_omega_0: kernel_omega_0: omega_0 must be a finite"
    ):
        build_model_from_config(
            _config({"name": "japanese_vowels"}, {"kernel_omega_0": -1.0}), bundle
        )
