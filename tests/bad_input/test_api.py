"""Malformed calls over the Python API (issue #15): each is refused at the boundary it was
passed to, with the error type a user can catch and a message naming the argument as the user
spelled it (``mask``, ``mask_init_sigma``, ``rate``, ...).  Typed argument errors also carry the
name in ``.argument`` (what the app maps to a config key).

Each case is ``(id, call, error type, argument)``: ``call()`` must raise ``error type`` and the
message must contain ``argument``.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from ckconv import ArgumentError
from ckconv import functional as Fck
from ckconv.grids import as_rates
from ckconv.kernelnets import MLP, SIREN, MAGNet, build_kernel_net
from ckconv.models import CCNN, CKCNN, RNN, TCN, HyenaNet, PointCCNN, ResNet, build_model
from ckconv.nn import CKConv, FlexConv, GaussianMask, PointConv, PointFlexConv

NAN, INF = float("nan"), float("inf")


@functools.cache
def _ck(**kw) -> CKConv:
    torch.manual_seed(0)
    return CKConv(2, 3, kernel_size=kw.pop("kernel_size", 9), **kw)


@functools.cache
def _flex() -> FlexConv:
    torch.manual_seed(0)
    return FlexConv(2, 3, kernel_size=9)


@functools.cache
def _point() -> PointConv:
    torch.manual_seed(0)
    return PointConv(4, 5, num_neighbors=4)


@functools.cache
def _ccnn2d() -> CCNN:
    torch.manual_seed(0)
    return CCNN(3, 10, data_dim=2, input_size=(8, 8), hidden_channels=8, num_blocks=1).eval()


@functools.cache
def _hyena2d() -> HyenaNet:
    torch.manual_seed(0)
    return HyenaNet(3, 10, 2, input_size=(8, 8), hidden_channels=8, num_blocks=1).eval()


@functools.cache
def _ckcnn() -> CKCNN:
    torch.manual_seed(0)
    return CKCNN(3, 4, input_size=16, hidden_channels=4, num_blocks=1).eval()


@functools.cache
def _pccnn() -> PointCCNN:
    torch.manual_seed(0)
    return PointCCNN(6, 4, hidden_channels=8, num_blocks=1, num_neighbors=4).eval()


def x1(c=2, n=20, b=2, **kw):
    return torch.randn(b, c, n, **kw)


def pos(b=2, n=10, d=3):
    return torch.rand(b, n, d)


def _with(t: torch.Tensor, index, value) -> torch.Tensor:
    t = t.clone()
    t[index] = value
    return t


def _times(n=20, b=2):
    return torch.arange(n, dtype=torch.float32).expand(b, n).clone()


SIREN1 = SIREN(1, 6)
MU1, SIGMA1 = torch.zeros(1), torch.full((1,), 0.2)

CASES = [
    # -- layer constructors -----------------------------------------------------------------
    ("ckconv-in_channels-0", lambda: CKConv(0, 3, kernel_size=9), ValueError, "in_channels"),
    (
        "ckconv-out_channels-float",
        lambda: CKConv(2, 3.0, kernel_size=9),
        ValueError,
        "out_channels",
    ),
    ("ckconv-in_channels-bool", lambda: CKConv(True, 3, kernel_size=9), ValueError, "in_channels"),
    ("ckconv-data_dim-4", lambda: CKConv(2, 3, 4), ValueError, "data_dim"),
    ("ckconv-causal-2d", lambda: CKConv(2, 3, 2, causal=True), ValueError, "causal"),
    ("ckconv-kernel_size-0", lambda: CKConv(2, 3, kernel_size=0), ValueError, "kernel_size"),
    ("ckconv-kernel_size-str", lambda: CKConv(2, 3, kernel_size="big"), ValueError, "kernel_size"),
    ("ckconv-same-no-input_size", lambda: CKConv(2, 3), ValueError, "input_size"),
    (
        "ckconv-kernel-too-large",
        lambda: CKConv(2, 3, kernel_size=99, input_size=10),
        ValueError,
        "input_size",
    ),
    (
        "ckconv-full-causal",
        lambda: CKConv(2, 3, kernel_size="full", input_size=9, causal=True),
        ValueError,
        "kernel_size",
    ),
    ("ckconv-method", lambda: CKConv(2, 3, kernel_size=9, method="fast"), ValueError, "method"),
    (
        "ckconv-init_gain-0",
        lambda: CKConv(2, 3, kernel_size=9, init_gain=0.0),
        ValueError,
        "init_gain",
    ),
    (
        "ckconv-init_gain-nan",
        lambda: CKConv(2, 3, kernel_size=9, init_gain=NAN),
        ValueError,
        "init_gain",
    ),
    (
        "ckconv-init_gain-str",
        lambda: CKConv(2, 3, kernel_size=9, init_gain="1"),
        TypeError,
        "init_gain",
    ),
    (
        "ckconv-weighting-mean",
        lambda: CKConv(2, 3, kernel_size=9, weighting="mean"),
        ValueError,
        "weighting",
    ),
    (
        "ckconv-weighting-typo",
        lambda: CKConv(2, 3, kernel_size=9, weighting="dense"),
        ValueError,
        "weighting",
    ),
    (
        "ckconv-kernel_net-int",
        lambda: CKConv(2, 3, kernel_size=9, kernel_net=5),
        TypeError,
        "kernel_net",
    ),
    (
        "ckconv-kernel_net-outputs",
        lambda: CKConv(2, 3, kernel_size=9, kernel_net=SIREN(1, 5)),
        ValueError,
        "out_channels",
    ),
    (
        "ckconv-kernel_net-dims",
        lambda: CKConv(2, 3, kernel_size=9, kernel_net=SIREN(2, 6)),
        ValueError,
        "data_dim",
    ),
    (
        "ckconv-kernel_mask-type",
        lambda: CKConv(2, 3, kernel_size=9, kernel_mask=torch.nn.Linear(1, 1)),
        TypeError,
        "kernel_mask",
    ),
    (
        "flex-mask_init_sigma-0",
        lambda: FlexConv(2, 3, kernel_size=9, mask_init_sigma=0.0),
        ValueError,
        "mask_init_sigma",
    ),
    (
        "flex-mask_init_sigma-nan",
        lambda: FlexConv(2, 3, kernel_size=9, mask_init_sigma=NAN),
        ValueError,
        "mask_init_sigma",
    ),
    (
        "flex-mask_init_sigma-inf",
        lambda: FlexConv(2, 3, kernel_size=9, mask_init_sigma=INF),
        ValueError,
        "mask_init_sigma",
    ),
    (
        "flex-mask_init_sigma-str",
        lambda: FlexConv(2, 3, kernel_size=9, mask_init_sigma="0.1"),
        TypeError,
        "mask_init_sigma",
    ),
    (
        "flex-mask_threshold-1",
        lambda: FlexConv(2, 3, kernel_size=9, mask_threshold=1.0),
        ValueError,
        "mask_threshold",
    ),
    (
        "flex-mask_threshold-0",
        lambda: FlexConv(2, 3, kernel_size=9, mask_threshold=0.0),
        ValueError,
        "mask_threshold",
    ),
    ("flex-kernel_size-1", lambda: FlexConv(2, 3, kernel_size=1), ValueError, "kernel_size"),
    ("flex-same-input_size-1", lambda: FlexConv(2, 3, input_size=1), ValueError, "kernel_size"),
    (
        "point-num_neighbors-0",
        lambda: PointConv(4, 5, num_neighbors=0),
        ValueError,
        "num_neighbors",
    ),
    ("point-locality", lambda: PointConv(4, 5, locality="ball"), ValueError, "locality"),
    ("point-weighting", lambda: PointConv(4, 5, weighting="average"), ValueError, "weighting"),
    ("point-scale-neg", lambda: PointConv(4, 5, scale=-1.0), ValueError, "scale"),
    ("point-scale-nan", lambda: PointConv(4, 5, scale=NAN), ValueError, "scale"),
    ("point-radius-0", lambda: PointConv(4, 5, radius=0.0), ValueError, "radius"),
    (
        "point-density_bandwidth",
        lambda: PointConv(4, 5, density_bandwidth=-2.0),
        ValueError,
        "density_bandwidth",
    ),
    ("point-chunk_size-0", lambda: PointConv(4, 5, chunk_size=0), ValueError, "chunk_size"),
    ("point-backend", lambda: PointConv(4, 5, backend="faiss"), ValueError, "backend"),
    (
        "pointflex-mask_init_sigma",
        lambda: PointFlexConv(4, 5, mask_init_sigma=-0.1),
        ValueError,
        "mask_init_sigma",
    ),
    (
        "pointflex-mask_threshold",
        lambda: PointFlexConv(4, 5, mask_threshold=1.5),
        ValueError,
        "mask_threshold",
    ),
    ("gaussianmask-init_sigma", lambda: GaussianMask(1, init_sigma=0.0), ValueError, "init_sigma"),
    # -- layer forwards ---------------------------------------------------------------------
    ("ckconv-fwd-list", lambda: _ck()([1.0, 2.0]), TypeError, "input"),
    ("ckconv-fwd-2d", lambda: _ck()(torch.randn(2, 20)), ValueError, "input"),
    ("ckconv-fwd-channels", lambda: _ck()(x1(c=5)), ValueError, "input channels"),
    ("ckconv-fwd-dtype", lambda: _ck()(x1(dtype=torch.float64)), TypeError, "dtype"),
    ("ckconv-fwd-rate-true", lambda: _ck()(x1(), rate=True), TypeError, "rate"),
    ("ckconv-fwd-rate-tiny", lambda: _ck()(x1(), rate=1e-6), ValueError, "rate"),
    ("ckconv-fwd-rate-one-tap", lambda: _ck()(x1(), rate=0.2), ValueError, "rate"),
    ("ckconv-fwd-rate-nan", lambda: _ck()(x1(), rate=NAN), ValueError, "rate"),
    ("ckconv-fwd-rate-inf", lambda: _ck()(x1(), rate=INF), ValueError, "rate"),
    ("ckconv-fwd-rate-0", lambda: _ck()(x1(), rate=0), ValueError, "rate"),
    ("ckconv-fwd-rate-neg", lambda: _ck()(x1(), rate=-0.5), ValueError, "rate"),
    ("ckconv-fwd-rate-str", lambda: _ck()(x1(), rate="half"), ValueError, "rate"),
    ("ckconv-fwd-rate-zero-denominator", lambda: _ck()(x1(), rate="1/0"), ValueError, "rate"),
    ("ckconv-fwd-rate-dims", lambda: _ck()(x1(), rate=[1.0, 2.0]), ValueError, "rate"),
    ("ckconv-fwd-rate-dict", lambda: _ck()(x1(), rate={"r": 1}), ValueError, "rate"),
    ("ckconv-fwd-rate-object", lambda: _ck()(x1(), rate=object()), TypeError, "rate"),
    (
        "ckconv-fwd-mask-without-times",
        lambda: _ck()(x1(), mask=torch.ones(2, 20, dtype=torch.bool)),
        ValueError,
        "mask",
    ),
    (
        "ckconv-fwd-times-and-rate",
        lambda: _ck()(x1(), times=_times(), rate=0.5),
        ValueError,
        "rate",
    ),
    ("ckconv-fwd-times-shape", lambda: _ck()(x1(), times=_times(19)), ValueError, "times"),
    ("ckconv-fwd-times-int", lambda: _ck()(x1(), times=_times().long()), TypeError, "times"),
    (
        "ckconv-fwd-times-nan",
        lambda: _ck()(x1(), times=_with(_times(), (0, 3), NAN)),
        ValueError,
        "times",
    ),
    (
        "ckconv-fwd-times-inf",
        lambda: _ck()(x1(), times=_with(_times(), (1, 0), -INF)),
        ValueError,
        "times",
    ),
    ("ckconv-fwd-times-list", lambda: _ck()(x1(), times=[0.0, 1.0]), TypeError, "times"),
    (
        "ckconv-fwd-mask-float",
        lambda: _ck()(x1(), times=_times(), mask=torch.ones(2, 20)),
        TypeError,
        "mask",
    ),
    (
        "ckconv-fwd-mask-shape",
        lambda: _ck()(x1(), times=_times(), mask=torch.ones(2, 21, dtype=torch.bool)),
        ValueError,
        "mask",
    ),
    (
        "ckconv-fwd-times-input-nan",
        lambda: _ck()(_with(x1(), (0, 0, 0), NAN), times=_times()),
        ValueError,
        "input",
    ),
    (
        "ckconv-fwd-out_of_domain",
        lambda: _ck()(x1(), times=_times(), out_of_domain="drop"),
        ValueError,
        "out_of_domain",
    ),
    (
        "ckconv-fwd-weighting-bad",
        lambda: _ck()(x1(), times=_times(), weighting="sum-ish"),
        ValueError,
        "weighting",
    ),
    (
        "ckconv-fwd-times-3d-layer",
        lambda: CKConv(2, 3, 2, kernel_size=5)(torch.randn(1, 2, 6, 6), times=_times(6, 1)),
        ValueError,
        "times",
    ),
    ("flex-fwd-channels", lambda: _flex()(x1(c=3)), ValueError, "input channels"),
    ("flex-fwd-rate-bool", lambda: _flex()(x1(), rate=False), TypeError, "rate"),
    ("flex-fwd-sigma-nan", lambda: _nan_sigma_flex()(x1()), ValueError, "mask_sigma"),
    ("flex-fwd-sigma-inf", lambda: _nan_sigma_flex(INF)(x1()), ValueError, "mask_sigma"),
    ("point-fwd-input-2d", lambda: _point()(torch.randn(2, 4), pos()), ValueError, "input"),
    ("point-fwd-channels", lambda: _point()(x1(c=3, n=10), pos()), ValueError, "input"),
    ("point-fwd-pos-list", lambda: _point()(x1(c=4, n=10), [[0.0]]), TypeError, "pos"),
    ("point-fwd-pos-int", lambda: _point()(x1(c=4, n=10), pos().long()), TypeError, "pos"),
    ("point-fwd-pos-dims", lambda: _point()(x1(c=4, n=10), pos(d=2)), ValueError, "pos"),
    ("point-fwd-pos-n", lambda: _point()(x1(c=4, n=10), pos(n=9)), ValueError, "pos"),
    (
        "point-fwd-pos-nan",
        lambda: _point()(x1(c=4, n=10), _with(pos(), (0, 2, 1), NAN)),
        ValueError,
        "pos",
    ),
    (
        "point-fwd-pos-inf",
        lambda: _point()(x1(c=4, n=10), _with(pos(), (1, 0, 0), INF)),
        ValueError,
        "pos",
    ),
    (
        "point-fwd-input-nan",
        lambda: _point()(_with(x1(c=4, n=10), (0, 1, 2), NAN), pos()),
        ValueError,
        "input",
    ),
    (
        "point-fwd-mask-float",
        lambda: _point()(x1(c=4, n=10), pos(), mask=torch.ones(2, 10)),
        TypeError,
        "mask",
    ),
    (
        "point-fwd-mask-shape",
        lambda: _point()(x1(c=4, n=10), pos(), mask=torch.ones(2, 11, dtype=torch.bool)),
        ValueError,
        "mask",
    ),
    (
        "point-fwd-query_mask-alone",
        lambda: _point()(x1(c=4, n=10), pos(), query_mask=torch.ones(2, 10, dtype=torch.bool)),
        ValueError,
        "query_mask",
    ),
    (
        "point-fwd-query_pos-dims",
        lambda: _point()(x1(c=4, n=10), pos(), query_pos=pos(d=2)),
        ValueError,
        "query_pos",
    ),
    (
        "point-fwd-query_pos-nan",
        lambda: _point()(x1(c=4, n=10), pos(), query_pos=torch.full((2, 3, 3), NAN)),
        ValueError,
        "query_pos",
    ),
    (
        "point-fwd-dtype",
        lambda: _point()(x1(c=4, n=10, dtype=torch.float64), pos().double()),
        TypeError,
        "dtype",
    ),
    # -- functional twins -------------------------------------------------------------------
    ("F.ckconv-input-list", lambda: Fck.ckconv([1.0], SIREN1, 5), TypeError, "input"),
    (
        "F.ckconv-input-int",
        lambda: Fck.ckconv(torch.ones(1, 2, 8, dtype=torch.long), SIREN1, 5),
        TypeError,
        "input",
    ),
    ("F.ckconv-input-dims", lambda: Fck.ckconv(torch.randn(2, 8), SIREN1, 5), ValueError, "input"),
    ("F.ckconv-empty", lambda: Fck.ckconv(torch.randn(1, 2, 0), SIREN1, 5), ValueError, "input"),
    ("F.ckconv-kernel_size", lambda: Fck.ckconv(x1(), SIREN1, 0), ValueError, "kernel_size"),
    ("F.ckconv-rate-true", lambda: Fck.ckconv(x1(), SIREN1, 9, rate=True), TypeError, "rate"),
    ("F.ckconv-rate-tiny", lambda: Fck.ckconv(x1(), SIREN1, 9, rate=1e-6), ValueError, "rate"),
    (
        "F.flexconv-threshold",
        lambda: Fck.flexconv(x1(), SIREN1, 9, MU1, SIGMA1, mask_threshold=2.0),
        ValueError,
        "mask_threshold",
    ),
    (
        "F.flexconv-sigma-nan",
        lambda: Fck.flexconv(x1(), SIREN1, 9, MU1, torch.full((1,), NAN)),
        ValueError,
        "mask_sigma",
    ),
    (
        "F.flexconv-sigma-shape",
        lambda: Fck.flexconv(x1(), SIREN1, 9, MU1, torch.ones(2)),
        ValueError,
        "mask_sigma",
    ),
    (
        "F.flexconv-mu-list",
        lambda: Fck.flexconv(x1(), SIREN1, 9, [0.0], SIGMA1),
        TypeError,
        "mask_mu",
    ),
    (
        "F.irregular-times-shape",
        lambda: Fck.irregular_ckconv(x1(), _times(7), SIREN1, 9),
        ValueError,
        "times",
    ),
    (
        "F.irregular-mask-int",
        lambda: Fck.irregular_ckconv(
            x1(), _times(), SIREN1, 9, mask=torch.ones(2, 20, dtype=torch.int64)
        ),
        TypeError,
        "mask",
    ),
    (
        "F.irregular-output_mask-alone",
        lambda: Fck.irregular_ckconv(
            x1(), _times(), SIREN1, 9, output_mask=torch.ones(2, 20, dtype=torch.bool)
        ),
        ValueError,
        "output_mask",
    ),
    (
        "F.irregular-output_times-nan",
        lambda: Fck.irregular_ckconv(
            x1(), _times(), SIREN1, 9, output_times=torch.full((2, 3), NAN)
        ),
        ValueError,
        "output_times",
    ),
    (
        "F.irregular-output_times-batch",
        lambda: Fck.irregular_ckconv(x1(), _times(), SIREN1, 9, output_times=torch.zeros(3, 3)),
        ValueError,
        "output_times",
    ),
    (
        "F.irregular-weighting-mean",
        lambda: Fck.irregular_ckconv(x1(), _times(), SIREN1, 9, weighting="mean"),
        ValueError,
        "weighting",
    ),
    (
        "F.irregular-kernel_size",
        lambda: Fck.irregular_ckconv(x1(), _times(), SIREN1, 0),
        ValueError,
        "kernel_size",
    ),
    (
        "F.irregular-mask_threshold",
        lambda: Fck.irregular_ckconv(
            x1(), _times(), SIREN1, 9, mask_mu=MU1, mask_sigma=SIGMA1, mask_threshold=0.0
        ),
        ValueError,
        "mask_threshold",
    ),
    (
        "F.irregular-mask_sigma-nan",
        lambda: Fck.irregular_ckconv(
            x1(), _times(), SIREN1, 9, mask_mu=MU1, mask_sigma=torch.full((1,), NAN)
        ),
        ValueError,
        "mask_sigma",
    ),
    (
        "F.irregular-mask_sigma-alone",
        lambda: Fck.irregular_ckconv(x1(), _times(), SIREN1, 9, mask_sigma=SIGMA1),
        ValueError,
        "mask_mu",
    ),
    (
        "F.neighbor_weights-weighting",
        lambda: Fck.neighbor_weights(_nb(), "median"),
        ValueError,
        "weighting",
    ),
    (
        "F.neighbor_weights-density-missing",
        lambda: Fck.neighbor_weights(_nb(), "density"),
        ValueError,
        "density",
    ),
    ("F.knn-k-0", lambda: Fck.knn(pos(), pos(), 0), ValueError, "k"),
    ("F.knn-support-2d", lambda: Fck.knn(pos(), torch.rand(10, 3), 2), ValueError, "support"),
    ("F.knn-query-int", lambda: Fck.knn(pos().long(), pos(), 2), TypeError, "query"),
    (
        "F.knn-support_mask",
        lambda: Fck.knn(pos(), pos(), 2, support_mask=torch.ones(2, 10)),
        TypeError,
        "support_mask",
    ),
    ("grids.as_rates-bool", lambda: as_rates(True, 1), TypeError, "rate"),
    ("grids.as_rates-str", lambda: as_rates("fast", 2), ValueError, "rate"),
    ("grids.as_rates-dims", lambda: as_rates((1, 2, 3), 2), ValueError, "rate"),
    # -- kernel nets -------------------------------------------------------------------------
    ("siren-in_dims-0", lambda: SIREN(0, 4), ValueError, "in_dims"),
    ("siren-out_channels-bool", lambda: SIREN(1, True), ValueError, "out_channels"),
    ("siren-layers-1", lambda: SIREN(1, 4, layers=1), ValueError, "layers"),
    ("siren-omega_0-nan", lambda: SIREN(1, 4, omega_0=NAN), ValueError, "omega_0"),
    ("magnet-alpha-0", lambda: MAGNet(1, 4, alpha=0.0), ValueError, "alpha"),
    ("magnet-init_extent-inf", lambda: MAGNet(1, 4, init_extent=INF), ValueError, "init_extent"),
    ("mlp-activation", lambda: MLP(1, 4, activation="gelu2"), ValueError, "activation"),
    ("build_kernel_net-name", lambda: build_kernel_net("sirenn", 1, 4), ValueError, "sirenn"),
    ("kernelnet-positions-dims", lambda: SIREN(2, 4)(torch.rand(5, 3)), ValueError, "positions"),
    (
        "kernelnet-positions-int",
        lambda: SIREN(1, 4)(torch.ones(5, 1, dtype=torch.long)),
        TypeError,
        "positions",
    ),
    # -- models ------------------------------------------------------------------------------
    (
        "ccnn-hidden_channels-0",
        lambda: CCNN(3, 10, input_size=8, hidden_channels=0),
        ValueError,
        "hidden_channels",
    ),
    ("ccnn-dropout-1", lambda: CCNN(3, 10, input_size=8, dropout=1.0), ValueError, "dropout"),
    ("ccnn-data_dim-4", lambda: CCNN(3, 10, data_dim=4, input_size=8), ValueError, "data_dim"),
    (
        "ccnn-norm",
        lambda: CCNN(3, 10, input_size=8, hidden_channels=4, num_blocks=1, norm="instance"),
        ValueError,
        "norm",
    ),
    (
        "ccnn-head",
        lambda: CCNN(3, 10, input_size=8, hidden_channels=4, num_blocks=1, head="max"),
        ValueError,
        "head",
    ),
    (
        "ccnn-vocab-2d",
        lambda: CCNN(1, 10, data_dim=2, input_size=8, vocab_size=5),
        ValueError,
        "data_dim",
    ),
    ("ccnn-fwd-2d-input", lambda: _ccnn2d()(torch.randn(2, 3, 8)), ValueError, "input"),
    ("ccnn-fwd-3d-input", lambda: _ccnn2d()(torch.randn(2, 3, 8, 8, 8)), ValueError, "input"),
    ("ccnn-fwd-channels", lambda: _ccnn2d()(torch.randn(2, 5, 8, 8)), ValueError, "input"),
    ("hyena2d-fwd-1d-input", lambda: _hyena2d()(torch.randn(2, 3, 8)), ValueError, "input"),
    ("hyena2d-fwd-channels", lambda: _hyena2d()(torch.randn(2, 5, 8, 8)), ValueError, "input"),
    (
        "ccnn-fwd-ints",
        lambda: _ccnn2d()(torch.zeros(2, 3, 8, 8, dtype=torch.long)),
        TypeError,
        "input",
    ),
    ("ccnn-fwd-list", lambda: _ccnn2d()([[0.0]]), TypeError, "input"),
    (
        "ccnn-fwd-rate-true",
        lambda: _ccnn2d()(torch.randn(2, 3, 8, 8), rate=True),
        TypeError,
        "rate",
    ),
    ("ckcnn-dropout-neg", lambda: CKCNN(3, 4, input_size=16, dropout=-0.1), ValueError, "dropout"),
    (
        "ckcnn-num_blocks-0",
        lambda: CKCNN(3, 4, input_size=16, num_blocks=0),
        ValueError,
        "num_blocks",
    ),
    ("ckcnn-fwd-channels", lambda: _ckcnn()(torch.randn(2, 4, 16)), ValueError, "input"),
    ("ckcnn-fwd-4d", lambda: _ckcnn()(torch.randn(2, 3, 4, 4)), ValueError, "input"),
    (
        "ckcnn-fwd-mask-alone",
        lambda: _ckcnn()(torch.randn(2, 3, 16), mask=torch.ones(2, 16, dtype=torch.bool)),
        ValueError,
        "mask",
    ),
    (
        "ckcnn-fwd-times-mask-float",
        lambda: _ckcnn()(torch.randn(2, 3, 16), times=_times(16), mask=torch.ones(2, 16)),
        TypeError,
        "mask",
    ),
    (
        "ckcnn-fwd-times-nan",
        lambda: _ckcnn()(torch.randn(2, 3, 16), times=_with(_times(16), (0, 5), NAN)),
        ValueError,
        "times",
    ),
    (
        "ckcnn-tokens-out-of-range",
        lambda: CKCNN(1, 4, input_size=8, hidden_channels=4, num_blocks=1, vocab_size=5)(
            torch.full((2, 8), 7)
        ),
        ValueError,
        "token ids",
    ),
    (
        "tcn-fwd-channels",
        lambda: TCN(3, 4, hidden_channels=4, num_levels=1)(torch.randn(2, 2, 8)),
        ValueError,
        "input",
    ),
    (
        "tcn-fwd-rate",
        lambda: TCN(3, 4, hidden_channels=4, num_levels=1)(torch.randn(2, 3, 8), rate=0.5),
        ValueError,
        "rate",
    ),
    (
        "resnet-fwd-dims",
        lambda: ResNet(3, 4, hidden_channels=4, num_blocks=1)(torch.randn(2, 3, 8)),
        ValueError,
        "input",
    ),
    (
        "rnn-fwd-channels",
        lambda: RNN(3, 4, hidden_size=4)(torch.randn(2, 2, 8)),
        ValueError,
        "input",
    ),
    ("rnn-kind", lambda: RNN(3, 4, kind="transformer"), ValueError, "kind"),
    ("pointccnn-dropout", lambda: PointCCNN(6, 4, dropout=1.5), ValueError, "dropout"),
    ("pointccnn-head", lambda: PointCCNN(6, 4, head="last"), ValueError, "head"),
    ("pointccnn-fwd-2d", lambda: _pccnn()(torch.randn(2, 6)), ValueError, "x"),
    ("pointccnn-fwd-channels", lambda: _pccnn()(torch.randn(2, 5, 10)), ValueError, "x"),
    (
        "pointccnn-fwd-nan",
        lambda: _pccnn()(_with(torch.randn(2, 6, 10), (0, 4, 3), NAN)),
        ValueError,
        "x",
    ),
    (
        "pointccnn-fwd-nan-position",
        lambda: _pccnn()(_with(torch.randn(2, 6, 10), (1, 0, 0), INF)),
        ValueError,
        "x",
    ),
    (
        "pointccnn-fwd-mask",
        lambda: _pccnn()(torch.randn(2, 6, 10), torch.ones(2, 10)),
        TypeError,
        "mask",
    ),
    (
        "pointccnn-fwd-pos-shape",
        lambda: _pccnn()(torch.randn(2, 6, 10), pos=pos(n=9)),
        ValueError,
        "pos",
    ),
    (
        "build_model-option",
        lambda: build_model("tcn", in_channels=1, out_channels=2, levels=3),
        ValueError,
        "levels",
    ),
    (
        "build_model-name",
        lambda: build_model("ccnnn", in_channels=1, out_channels=2),
        ValueError,
        "ccnnn",
    ),
]


def _nan_sigma_flex(value: float = NAN) -> FlexConv:
    layer = FlexConv(2, 3, kernel_size=9)
    with torch.no_grad():
        layer.kernel_mask.sigma.fill_(value)
    return layer


def _nb():
    p = pos()
    return Fck.knn(p, p, 3)


@pytest.mark.parametrize(("call", "error", "argument"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_malformed_call_is_refused_naming_the_argument(call, error, argument):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert argument in message, f"message does not name {argument!r}: {message}"
    if isinstance(info.value, ArgumentError) and " " not in argument:
        assert argument in info.value.argument or info.value.argument in message


def test_case_ids_are_unique_and_many():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 90


# -- legal but unusual inputs, against a reference ------------------------------------------
def _oracle_1d(layer: CKConv, x: torch.Tensor) -> torch.Tensor:
    """Float64 direct convolution of ``x`` with the layer's own kernel, by explicit sums over
    zero-padded windows (``padding="same"``, centre tap ``(K - 1) // 2``; causal: the last tap
    on the present sample)."""
    weight = layer.kernel().detach().double()  # (C_out, C_in, K) dense
    k = weight.shape[-1]
    left = k - 1 if layer.causal else (k - 1) // 2
    padded = torch.nn.functional.pad(x.double(), (left, k - 1 - left))
    windows = padded.unfold(-1, k, 1)  # (N, C_in, L, K)
    y = torch.einsum("nclk,ock->nol", windows, weight)
    return y + layer.bias.detach().double().view(1, -1, 1)


def _layer(causal: bool, dtype=torch.float32) -> CKConv:
    torch.manual_seed(4)
    return CKConv(3, 2, kernel_size=7, causal=causal).to(dtype)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda x: x.transpose(1, 2).contiguous().transpose(1, 2), id="transposed"),
        pytest.param(lambda x: x[:1].expand(3, -1, -1), id="expanded-batch"),
        pytest.param(lambda x: torch.cat([x, x], -1)[..., ::2], id="strided"),
        pytest.param(lambda x: x[..., :1].expand(-1, -1, 25), id="expanded-length"),
    ],
)
def test_non_contiguous_inputs_match_the_float64_oracle(causal, make):
    layer = _layer(causal)
    x = make(torch.randn(3, 3, 25))
    assert not x.is_contiguous()
    got = layer(x)
    torch.testing.assert_close(got, layer(x.contiguous()), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got.double(), _oracle_1d(layer, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_float64_layer_matches_the_float64_oracle(causal):
    layer = _layer(causal, torch.float64)
    x = torch.randn(2, 3, 30, dtype=torch.float64)
    torch.testing.assert_close(layer(x), _oracle_1d(layer, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float16, 4e-3), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("causal", [False, True])
def test_half_precision_layer_is_close_to_the_float64_oracle(dtype, tol, causal):
    # the oracle sums the half layer's own kernel exactly: what is checked is the convolution
    # in half precision (the kernel net's own rounding is a property of the kernel net; a SIREN
    # sampled in float16 differs from its float32 kernel by up to ~5 % of the output scale)
    layer = _layer(causal).to(dtype)
    x = torch.randn(2, 3, 30).to(dtype)
    got = layer(x).detach()
    assert got.dtype == dtype
    want = _oracle_1d(layer, x)
    scale = float(want.abs().max())
    assert float((got.double() - want).abs().max()) <= tol * scale


@pytest.mark.parametrize("weighting", ["none", "density"])
@pytest.mark.parametrize("causal", [False, True])
def test_unsorted_timestamps_give_the_outputs_of_the_sorted_samples(weighting, causal):
    # unsorted times are accepted (documented): the result is the sorted sequence's, permuted
    torch.manual_seed(5)
    layer = CKConv(2, 3, kernel_size=15, causal=causal, weighting=weighting).double()
    times = torch.sort(torch.rand(2, 12, dtype=torch.float64) * 14, dim=1).values
    x = torch.randn(2, 2, 12, dtype=torch.float64)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 9:] = False
    want = layer(x, times=times, mask=mask)
    perm = torch.randperm(12)
    got = layer(x[..., perm], times=times[:, perm], mask=mask[:, perm])
    torch.testing.assert_close(got, want[..., perm], rtol=1e-12, atol=1e-12)


def test_density_weights_of_unsorted_times_equal_the_sorted_spacing():
    times = torch.tensor([[4.0, 0.0, 1.0, 7.0]])
    # sorted 0, 1, 4, 7: spacings 1, (1 + 3) / 2, (3 + 3) / 2, 3 (one side at the ends)
    assert Fck.density_weights(times).tolist() == [[3.0, 1.0, 2.0, 3.0]]


def test_a_duplicated_sample_weighs_what_one_sample_does_with_density_weights():
    # two samples at one time share its spacing: duplicating a sample leaves the Riemann sum
    # (and so every output at the other samples) unchanged
    torch.manual_seed(6)
    layer = CKConv(2, 3, kernel_size=15, weighting="density").double()
    times = torch.tensor([[0.0, 1.5, 3.0, 4.0, 6.5]], dtype=torch.float64)
    x = torch.randn(1, 2, 5, dtype=torch.float64)
    once = layer(x, times=times)
    dup_x = torch.cat([x, x[..., 2:3]], -1)
    dup_t = torch.cat([times, times[:, 2:3]], -1)
    twice = layer(dup_x, times=dup_t)
    torch.testing.assert_close(twice[..., :5], once, rtol=1e-12, atol=1e-12)


def test_non_contiguous_point_positions_match_contiguous_ones():
    torch.manual_seed(7)
    layer = PointConv(4, 5, num_neighbors=6).double()
    pos_t = torch.rand(2, 3, 40, dtype=torch.float64)  # (B, D, N): transposed below
    feats = torch.randn(2, 40, 4, dtype=torch.float64).transpose(1, 2)
    pos_nc = pos_t.transpose(1, 2)
    assert not pos_nc.is_contiguous() and not feats.is_contiguous()
    torch.testing.assert_close(
        layer(feats, pos_nc), layer(feats.contiguous(), pos_nc.contiguous()), rtol=0, atol=0
    )


def test_rate_at_the_smallest_legal_value_is_accepted_and_scales_the_kernel():
    # K = 9 centred: 1/4 keeps the centre and its two neighbours 4 training samples away
    layer = _layer(False, torch.float64)
    layer9 = CKConv(3, 2, kernel_size=9).double()
    assert layer9.kernel(0.25).shape[-1] == 3
    torch.testing.assert_close(layer9.kernel(0.25)[..., 1], 4.0 * layer9.kernel()[..., 4])
    with pytest.raises(ValueError, match=r"needs rate >= 1/4"):
        layer9.kernel(0.24)
    assert layer(torch.randn(1, 3, 12, dtype=torch.float64), rate="1/2").shape == (1, 2, 12)


# -- FlexConv at small sizes ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_size": 9},
        {"kernel_size": 9},
        {"kernel_size": 2},
        {"kernel_size": 3, "separable": True},
        {"kernel_size": 13},
        {"kernel_size": 5, "causal": True},
        {"kernel_size": 2, "data_dim": 2},
        {"kernel_size": 4, "data_dim": 2, "separable": True},
        {"kernel_size": 3, "data_dim": 3},
    ],
    ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()),
)
def test_small_flexconv_builds_with_its_defaults_and_trains(kwargs):
    torch.manual_seed(8)
    data_dim = kwargs.get("data_dim", 1)
    layer = FlexConv(3, 4, **kwargs)
    kernel = layer.kernel().detach()
    assert torch.isfinite(kernel).all() and float(kernel.abs().max()) > 0
    # the crop keeps the centre tap's neighbours (or the present and one past tap)
    assert all(k >= 2 for k in layer.cropped_kernel_size())
    # the re-weighting held: the kernel's second moment is init_gain^2 / fan
    fan = math.prod(kernel.shape[2:]) * (1 if layer.separable else 3)
    assert float(kernel.double().square().mean()) == pytest.approx(1.0 / fan, rel=1e-4)
    size = (9,) * data_dim
    x = torch.randn(8, 3, *size)
    target = torch.roll(x[:, :1], 1, dims=-1).expand(-1, 4, *size)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = (layer(x) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_small_ccnn_builds_and_trains():
    torch.manual_seed(9)
    model = CCNN(2, 3, input_size=9, hidden_channels=8, num_blocks=2)
    x, y = torch.randn(16, 2, 9), torch.randint(0, 3, (16,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(10):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
    assert math.isfinite(float(loss)) and float(loss) < first


def test_the_widened_initial_mask_is_rebuilt_by_a_reload():
    torch.manual_seed(10)
    layer = FlexConv(2, 2, kernel_size=9)
    again = FlexConv(2, 2, kernel_size=9)
    again.load_state_dict(layer.state_dict())
    x = torch.randn(1, 2, 12)
    assert layer.kernel_mask.init_sigma > 0.075  # 0.075 would crop K = 9 to its centre tap
    torch.testing.assert_close(again(x), layer(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"kernel_omega_0": -1.0}, "kernel_omega_0"),
        ({"kernel_hidden": 0}, "kernel_hidden"),
        ({"kernel_layers": 0}, "kernel_layers"),
        ({"kernel_net": "sirenn"}, "kernel_net"),
        ({"kernel_net": 3}, "kernel_net"),
    ],
)
@pytest.mark.parametrize("model", [CKCNN, CCNN])
def test_models_name_their_own_kernel_net_arguments(model, kwargs, argument):
    with pytest.raises((ValueError, TypeError)) as info:
        model(2, 3, input_size=9, hidden_channels=4, num_blocks=1, **kwargs)
    assert isinstance(info.value, ArgumentError) and info.value.argument == argument
    assert str(info.value).startswith(argument)


def test_the_kernel_net_trial_build_draws_no_random_numbers():
    from ckconv.models.ccnn import kernel_net_factory

    torch.manual_seed(11)
    before = torch.get_rng_state()
    kernel_net_factory("magnet", hidden=8, layers=3, omega_0=None, causal=False, init_extent=0.1)
    assert torch.equal(torch.get_rng_state(), before)
