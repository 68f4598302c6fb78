"""No-grad forwards reuse the sampled kernel / spectrum until anything changes (issue: FFT engine)."""

import pytest
import torch

from ckconv.kernelnets import MAGNet
from ckconv.nn import CKConv, FlexConv


def close(a, b, tol=1e-5):
    """float32 FFT round-off is relative to the output's scale: compare norms."""
    return ((a - b).norm() / b.norm()).item() < tol


class CountingMAGNet(MAGNet):
    calls = 0

    def hidden_features(self, positions):
        CountingMAGNet.calls += 1
        return super().hidden_features(positions)


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize(
    "cls,kernel_size,size", [(CKConv, 64, (64,)), (FlexConv, 33, (24, 20)), (CKConv, 5, (16,))]
)
def test_eval_cache_reuses_and_invalidates(cls, kernel_size, size, separable):
    torch.manual_seed(0)
    data_dim = len(size)
    n_out = 3 if separable else 12
    layer = cls(
        3,
        4,
        data_dim,
        kernel_size=kernel_size,
        separable=separable,
        kernel_net=CountingMAGNet(data_dim, n_out, hidden=8, omega_0=5.0),
    )
    x = torch.randn(2, 3, *size)
    reference = layer(x)  # grad mode: no cache
    with torch.no_grad():
        CountingMAGNet.calls = 0
        first = layer(x)
        second = layer(torch.cat([x, x]))  # other batch size, same spatial size: still cached
        assert CountingMAGNet.calls == 1
        assert close(first, reference)
        assert close(second[:2], first)
        layer(x[..., : size[-1] // 2])  # new input size: recomputed
        assert CountingMAGNet.calls == 2
    # an optimiser step changes the parameters in place: the cache must not survive it
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(x).square().sum().backward()
    opt.step()
    with torch.no_grad():
        after = layer(x)
    fresh = layer(x)  # grad mode, computed from scratch
    assert close(after, fresh)
    assert not close(after, first, tol=1e-3)


def test_eval_cache_follows_load_state_dict_and_rate():
    torch.manual_seed(1)
    a = CKConv(2, 2, 1, kernel_size=32, kernel_net=MAGNet(1, 4, hidden=8))
    b = CKConv(2, 2, 1, kernel_size=32, kernel_net=MAGNet(1, 4, hidden=8))
    x = torch.randn(1, 2, 32)
    with torch.no_grad():
        b(x)
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(b(x), a(x))
        torch.testing.assert_close(b(x[..., ::2], rate=0.5), a(x[..., ::2], rate=0.5))
        with pytest.raises(ValueError, match="NaN"):
            b(torch.full_like(x, float("nan")))
