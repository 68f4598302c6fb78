"""Synchronised BatchNorm for CPU (gloo) process groups.

``torch.nn.SyncBatchNorm`` only runs on GPUs. :class:`ProcessGroupBatchNorm` normalises a training
batch with the mean and variance of the *global* batch (all processes), through differentiable
all-reduces, so a torchrun job computes what one process computes on the whole batch. State-dict
keys are those of ``nn.BatchNorm*d``: checkpoints load into the plain model.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProcessGroupBatchNorm", "convert_batchnorm"]


def _distributed() -> bool:
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


class ProcessGroupBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over ``(N, C, *spatial)`` whose training statistics span every process.

    Outside training, or without an initialised process group of more than one process, it is
    ``nn.BatchNorm*d``.

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: same as the input
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected (N, C, *spatial) input, got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and _distributed()):
            return super().forward(input)
        from torch.distributed.nn.functional import all_reduce

        self._check_input_dim(input)
        c = input.shape[1]
        dims = [0, *range(2, input.dim())]
        count = torch.tensor(
            [input.numel() / c], device=input.device, dtype=input.dtype
        )  # items per channel here
        local = torch.cat([input.sum(dims), count])
        total = all_reduce(local)
        n = total[-1]
        mean = total[:-1] / n
        shape = (1, c) + (1,) * (input.dim() - 2)
        centred = input - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                if m is None:
                    m = 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp_min(1))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm{1,2,3}d`` in ``module`` by :class:`ProcessGroupBatchNorm`,
    keeping parameters and running statistics. Returns the (possibly new) module."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, (ProcessGroupBatchNorm, nn.SyncBatchNorm)
    ):
        new = ProcessGroupBatchNorm(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
        new.load_state_dict(module.state_dict())
        ref = next(iter(module.state_dict().values()), None)
        if ref is not None:
            new.to(ref.device)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        replaced = convert_batchnorm(child)
        if replaced is not child:
            setattr(module, name, replaced)
    return module
