"""best.ckpt with a saturating metric: an equal monitored value with a lower validation loss
replaces it (the CKConv reference code keeps its best weights the same way); a resumed run
keeps comparing against the kept checkpoint's loss. The expected epochs are read off the
scripted metrics by hand."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from ckconv.app.callbacks import BestCheckpoint
from ckconv.app.checkpoint import load_checkpoint

# per epoch (0-based): accuracy saturates at epoch 1; the loss is lowest at epoch 3
ACC = [0.50, 1.00, 1.00, 1.00, 0.90, 1.00]
LOSS = [1.00, 0.50, 0.20, 0.10, 0.05, 0.30]


class Scripted(L.LightningModule):
    """Logs ACC/LOSS of the current epoch as val/acc and val/loss."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", ACC[self.current_epoch])
        self.log("val/loss", LOSS[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader():
    return DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2)


def _fit(folder, epochs, tie_break, ckpt_path=None):
    best = BestCheckpoint(tie_break=tie_break, dirpath=folder, filename="best", monitor="val/acc",
                          mode="max", enable_version_counter=False)  # fmt: skip
    last = ModelCheckpoint(dirpath=folder, filename="last", enable_version_counter=False)
    trainer = L.Trainer(max_epochs=epochs, callbacks=[best, last], logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, accelerator="cpu")  # fmt: skip
    trainer.fit(Scripted(), _loader(), _loader(), ckpt_path=ckpt_path)
    return load_checkpoint(folder / "best.ckpt")["epoch"], best


@pytest.mark.parametrize(("tie_break", "epoch"), [(None, 1), ("val/loss", 3)])
def test_equal_accuracy_with_lower_loss_replaces_best(tmp_path, tie_break, epoch):
    kept, best = _fit(tmp_path, len(ACC), tie_break)
    # Lightning alone keeps epoch 1 (first 1.00); with the tie-break, epoch 3 (1.00, loss 0.10):
    # epoch 4 has a lower loss but a lower accuracy, epoch 5 the accuracy but a higher loss
    assert kept == epoch
    assert float(best.best_model_score) == 1.0
    if tie_break:
        assert best.best_tie_break_score == pytest.approx(LOSS[3])


def test_a_resumed_run_keeps_the_kept_checkpoints_loss(tmp_path):
    _fit(tmp_path, 4, "val/loss")  # epochs 0-3: best is epoch 3 (1.00, loss 0.10)
    assert load_checkpoint(tmp_path / "best.ckpt")["epoch"] == 3
    # resumed for epochs 4-5: epoch 5 ties the accuracy with loss 0.30, which only replaces
    # best.ckpt if the kept loss (0.10) was lost on resume
    kept, best = _fit(tmp_path, len(ACC), "val/loss", ckpt_path=tmp_path / "last.ckpt")
    assert kept == 3 and best.best_tie_break_score == pytest.approx(LOSS[3])


def test_state_key_is_a_model_checkpoints():
    """Runs saved with Lightning's ModelCheckpoint resume with their best score."""
    kwargs = {"monitor": "val/acc", "mode": "max"}
    assert (
        BestCheckpoint(tie_break="val/loss", **kwargs).state_key
        == ModelCheckpoint(**kwargs).state_key
    )


def test_more_than_one_kept_checkpoint_is_refused():
    with pytest.raises(ValueError, match="save_top_k=3"):
        BestCheckpoint(monitor="val/acc", save_top_k=3)
