"""CCNN kernel re-weighting keeps activations at unit scale (SPEC §3.3, CCNN Fig. 6).

The re-weighting fixes the kernel's second moment, which fixes the gain for white inputs.
Deeper in a stack the inputs are no longer white, and how gains compound depends on how flat
the kernels' spectra are: MAGNets with the papers' omega_0 for sequences (CCNN Table 3,
~3000 for sMNIST) generate broad-band kernels and the stack stays at unit scale.  (Measured
while writing this: with omega_0=50 the same stack grows ~3x per layer.)
"""

import torch

from ckconv.kernelnets import MAGNet
from ckconv.nn import FlexConv

OMEGA_0 = 2976.49  # CCNN Table 3, sMNIST


def _stack_stds(init_gain):
    torch.manual_seed(0)

    def net(in_dims, out_channels):
        return MAGNet(in_dims, out_channels, omega_0=OMEGA_0, init_extent=1.667 * 0.075)

    layers = [
        FlexConv(
            32,
            32,
            1,
            kernel_size="same",
            input_size=4096,
            separable=True,
            init_gain=init_gain,
            kernel_net=net,
        )
        for _ in range(4)
    ]
    x = torch.randn(4, 32, 4096)
    stds = []
    with torch.no_grad():
        for layer in layers:
            x = layer(x)
            stds.append(x.std().item())
    return stds


def test_reweighted_stack_keeps_unit_std():
    stds = _stack_stds(1.0)
    assert all(0.5 < s < 2.0 for s in stds), stds


def test_stack_without_reweighting_blows_up():
    stds = _stack_stds(None)
    assert stds[-1] > 100.0, stds
