"""One kernel source, no hidden state: ``forward`` is its functional twin applied to
``kernel()``; frozen inference speed comes from the explicit ``ckconv.deploy.bake`` step.

(Replaces the tests of the no-grad eval cache that ``CKConv.forward`` used to keep, keyed on
the ids and versions of every parameter.)
"""

import pytest
import torch

from ckconv.deploy import bake
from ckconv.functional import apply_kernel, blur_kernel, ckconv, flexconv
from ckconv.kernelnets import MAGNet
from ckconv.nn import CKConv, FlexConv

F64 = torch.float64


def _layer(cls, data_dim, kernel_size, separable, causal=False, dtype=F64):
    torch.manual_seed(0)
    n_out = 3 if separable else 12
    kw = {"mask_init_sigma": 0.3} if cls is FlexConv else {}
    return cls(
        3,
        4,
        data_dim,
        kernel_size=kernel_size,
        separable=separable,
        causal=causal,
        kernel_net=MAGNet(data_dim, n_out, hidden=8, omega_0=5.0, dtype=dtype),
        dtype=dtype,
        **kw,
    )


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize(
    "cls,kernel_size,size,causal",
    [(CKConv, 64, (64,), True), (FlexConv, 33, (24, 20), False), (CKConv, 5, (16,), False)],
)
def test_forward_is_the_functional_twin_applied_to_kernel(
    cls, kernel_size, size, causal, separable
):
    layer = _layer(cls, len(size), kernel_size, separable, causal)
    x = torch.randn(2, 3, *size, dtype=F64)
    for rate, blur in ((None, False), (2.0, True)):
        xs = x if rate is None else torch.randn(2, 3, *(2 * s for s in size), dtype=F64)
        weight = layer.kernel(rate, xs.shape[2:])
        if blur:
            weight = blur_kernel(weight, rate)
        twin = apply_kernel(xs, weight, layer.bias, mixer=layer.mixer, causal=layer.causal)
        torch.testing.assert_close(layer(xs, rate=rate, blur=blur), twin, rtol=1e-12, atol=1e-12)
    # and the stand-alone functionals (which sample the kernel themselves) agree
    if cls is CKConv:
        fn = ckconv(x, layer.kernel_net, layer.kernel_size, layer.bias, mixer=layer.mixer,
                    causal=layer.causal)  # fmt: skip
    else:
        m = layer.kernel_mask
        fn = flexconv(x, layer.kernel_net, layer.kernel_size, m.mu, m.sigma, layer.bias,
                      mixer=layer.mixer, mask_threshold=m.threshold)  # fmt: skip
    torch.testing.assert_close(layer(x), fn, rtol=1e-12, atol=1e-12)


def test_no_grad_forward_keeps_no_state_and_follows_every_update():
    layer = _layer(FlexConv, 1, 48, separable=True)
    x = torch.randn(2, 3, 48, dtype=F64)
    before = dict(vars(layer))
    with torch.no_grad():
        first = layer(x)
        layer(x[..., :20])
    assert vars(layer).keys() == before.keys()  # nothing cached on the module
    # an optimiser step changes the parameters in place: the next no-grad forward follows it
    opt = torch.optim.SGD(layer.parameters(), lr=0.01)
    layer(x).square().mean().backward()
    opt.step()
    with torch.no_grad():
        after = layer(x)
    torch.testing.assert_close(after, layer(x).detach(), rtol=1e-9, atol=1e-9)
    assert not torch.allclose(after, first, atol=1e-3)
    # load_state_dict, too
    other = _layer(FlexConv, 1, 48, separable=True)
    with torch.no_grad():
        other(x)
        other.load_state_dict(layer.state_dict())
        torch.testing.assert_close(other(x), after, rtol=0, atol=0)
        torch.testing.assert_close(other(x[..., ::2], rate=0.5), layer(x[..., ::2], rate=0.5))
        with pytest.raises(ValueError, match="NaN"):
            other(torch.full_like(x, float("nan")))


@pytest.mark.parametrize("cls", [CKConv, FlexConv])
def test_bake_is_the_explicit_frozen_route(cls):
    """The frozen kernel (and its spectrum) lives in the baked copy, as buffers: outputs equal
    the layer's no-grad forward at the baked size and rate, and a bake after training sees the
    trained parameters (nothing stale can survive, because nothing is cached in the layer)."""
    layer = _layer(cls, 1, 301, separable=True, causal=True).eval()
    x = torch.randn(2, 3, 300, dtype=F64)
    frozen = bake(layer, 300, method="fft")
    assert frozen.spectrum is not None  # the long-kernel route: a stored spectrum
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), layer(x), rtol=1e-10, atol=1e-10)
        half = bake(layer, 150, rate=0.5)
        torch.testing.assert_close(half(x[..., ::2]), layer(x[..., ::2], rate=0.5))
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(x).square().sum().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(frozen(x), layer(x), atol=1e-6)  # a bake is a snapshot
        torch.testing.assert_close(bake(layer, 300)(x), layer(x), rtol=1e-10, atol=1e-10)
