"""Causal streaming: chunk-by-chunk outputs equal the offline forward, with bounded state."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ckconv.deploy import StreamingConv, bake, continuous_layers, stream
from ckconv.models import CCNN, CKCNN
from ckconv.nn import CKConv, FlexConv

F64 = torch.float64


def _chunks(length: int, seed: int, sizes=(1, 1, 1, 2, 3, 7, 16, 33)) -> list[tuple[int, int]]:
    """A random split of ``range(length)`` into chunks, always including some of size 1."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < length:
        t = rng.choice(sizes)
        out.append((i, min(length, i + t)))
        i += t
    return out


def _run(streamer, x, seed):
    return torch.cat([streamer.step(x[..., a:b]) for a, b in _chunks(x.shape[-1], seed)], dim=-1)


# -- one layer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
@pytest.mark.parametrize("separable", [False, True])
def test_streaming_conv_matches_padded_direct_oracle(method, separable):
    torch.manual_seed(0)
    conv = CKConv(3, 4, kernel_size=45, causal=True, separable=separable, dtype=F64).eval()
    with torch.no_grad():
        conv.bias.normal_()
    sc = StreamingConv.from_conv(conv, method=method, block_size=16)
    x = torch.randn(2, 3, 160, dtype=F64)
    # oracle: left-pad K-1 zeros and F.conv1d with the whole kernel, then mixer and bias
    w = conv.kernel()
    y = F.conv1d(F.pad(x, (44, 0)), w, groups=3 if separable else 1)
    if separable:
        y = torch.einsum("oi,nit->not", conv.mixer, y)
    oracle = y + conv.bias.view(1, -1, 1)
    state = sc.initial_state(2)
    outs = []
    for seed_chunk in _chunks(160, seed=1):
        a, b = seed_chunk
        out, state = sc(x[..., a:b], state)
        outs.append(out)
        assert state.shape == (2, 3, 44)  # the state never grows
    got = torch.cat(outs, -1)
    with torch.no_grad():
        torch.testing.assert_close(got, oracle, rtol=0, atol=1e-12 * oracle.abs().max())
        torch.testing.assert_close(got, conv(x), rtol=0, atol=1e-12 * oracle.abs().max())
    # the functional twin, fed the same chunks, gives the same stream
    from ckconv.functional import stream_conv

    state, twin = torch.zeros(2, 3, 44, dtype=F64), []
    with torch.no_grad():
        for a, b in _chunks(160, seed=1):
            out, state = stream_conv(x[..., a:b], state, w, conv.bias, mixer=conv.mixer)
            twin.append(out)
        torch.testing.assert_close(
            torch.cat(twin, -1), oracle, rtol=0, atol=1e-12 * oracle.abs().max()
        )


def test_streaming_conv_path_choice_is_per_chunk_and_bounded():
    conv = CKConv(8, 8, kernel_size=500, causal=True, separable=True).eval()
    sc = StreamingConv.from_conv(conv)
    assert sc.spectrum is not None and sc.block_size == 500
    assert not sc.chooses_fft(1)  # one sample: a 500-tap dot product beats any FFT
    assert sc.chooses_fft(4096)  # long chunks: block overlap-save
    # the FFT path's cost grows with the chunk, not with the stream: blocks of K samples
    assert sc._fft_cost(4000) == pytest.approx(8 * sc._fft_cost(500))
    short = StreamingConv.from_conv(CKConv(8, 8, kernel_size=9, causal=True).eval())
    assert short.spectrum is None and not short.chooses_fft(10_000)


def test_streaming_conv_errors():
    sc = StreamingConv.from_conv(CKConv(2, 2, kernel_size=5, causal=True).eval())
    with pytest.raises(ValueError, match=r"state must have shape \(1, 2, 4\)"):
        sc(torch.randn(1, 2, 3), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="chunk must have shape"):
        sc(torch.randn(1, 3, 3), sc.initial_state(1))
    with pytest.raises(ValueError, match="causal"):
        StreamingConv.from_conv(CKConv(2, 2, kernel_size=5).eval())
    with pytest.raises(TypeError, match="CKConv"):
        StreamingConv.from_conv(nn.Conv1d(2, 2, 3))


# -- whole models -------------------------------------------------------------------------------
def _randomise_bn(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)


STREAM_MODELS = {
    "ckcnn_layer": lambda: CKCNN(
        2, 3, input_size=40, hidden_channels=6, norm="layer", head="none", dtype=F64
    ),
    "ccnn_batch": lambda: CCNN(
        2,
        3,
        input_size=40,
        hidden_channels=6,
        num_blocks=2,
        causal=True,
        head="none",
        mask_init_sigma=0.3,
        dtype=F64,
    ),
    "ccnn_layer_tokens": lambda: CCNN(
        1,
        5,
        input_size=40,
        hidden_channels=6,
        num_blocks=2,
        causal=True,
        norm="layer",
        vocab_size=11,
        head="none",
        dtype=F64,
    ),
}


def _input(model, length, batch=2):
    if model.stem.vocab_size is not None:
        return torch.randint(0, model.stem.vocab_size, (batch, length))
    return torch.randn(batch, model.stem.in_channels, length, dtype=F64)


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
@pytest.mark.parametrize("case", sorted(STREAM_MODELS))
def test_stream_equals_offline_per_step_outputs(case, method):
    torch.manual_seed(3)
    model = STREAM_MODELS[case]()
    _randomise_bn(model)
    model.eval()
    x = _input(model, 97)  # longer than the training length 40: kernels stay 40 taps
    with torch.no_grad():
        offline = model(x)
    s = stream(model, method=method, block_size=8)
    got = _run(s, x, seed=hash(case) % 100)
    assert s.position == 97
    torch.testing.assert_close(got, offline, rtol=0, atol=1e-10 * offline.abs().max())
    # state is bounded by the kernels, whatever has been streamed
    taps = [(conv.in_channels, conv.kernel().shape[-1]) for _, conv in continuous_layers(model)]
    assert s.state_nbytes == sum(c * (k - 1) for c, k in taps) * 2 * 8  # batch 2, float64
    # reset: a new stream (other batch size) gives the offline outputs again
    s.reset()
    x1 = _input(model, 30, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(
            _run(s, x1, seed=5), model(x1), rtol=0, atol=1e-10 * offline.abs().max()
        )


@pytest.mark.parametrize("head", ["last", "mean"])
def test_stream_pooled_heads_equal_offline_on_every_prefix(head):
    torch.manual_seed(4)
    model = CKCNN(2, 3, input_size=20, hidden_channels=5, norm="layer", head=head, dtype=F64)
    model.eval()
    x = torch.randn(2, 2, 25, dtype=F64)
    got = _run(stream(model), x, seed=7)  # (N, C_out, T): logits after every step
    with torch.no_grad():
        want = torch.stack([model(x[..., : t + 1]) for t in range(25)], dim=-1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10 * want.abs().max())


def test_stream_float32_and_rate():
    torch.manual_seed(5)
    model = CCNN(
        1,
        2,
        input_size=32,
        hidden_channels=6,
        num_blocks=2,
        causal=True,
        head="none",
        mask_init_sigma=0.5,
    ).eval()
    x = torch.randn(1, 1, 70)
    with torch.no_grad():
        torch.testing.assert_close(_run(stream(model), x, 2), model(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            _run(stream(model, rate=0.5), x, 3), model(x, rate=0.5), rtol=1e-4, atol=1e-5
        )
    # a baked causal model streams too (its kernels as baked)
    baked = bake(model, 70)
    with torch.no_grad():
        torch.testing.assert_close(_run(stream(baked), x, 4), baked(x), rtol=1e-4, atol=1e-5)


def test_stream_leaves_model_alone_and_is_no_grad():
    model = CKCNN(1, 2, input_size=16, hidden_channels=4, norm="layer", head="none")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = stream(model)
    out = s.step(torch.randn(1, 1, 5))
    assert not out.requires_grad
    assert model.training  # the streamer works on its own eval copy
    assert isinstance(model.blocks[0].conv1, CKConv)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


class _MyBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = FlexConv(3, 3, kernel_size=12, causal=True, separable=True)

    def forward(self, x):
        return torch.tanh(self.conv(x)) + x


def test_stream_errors_name_the_problem():
    group = CKCNN(1, 2, input_size=16, hidden_channels=4, norm="group", head="none")
    with pytest.raises(ValueError, match=r"GroupNorm at 'blocks.0.norm1'.*norm='layer'"):
        stream(group)
    centred = CCNN(1, 2, input_size=16, hidden_channels=4, num_blocks=1, head="none")
    with pytest.raises(ValueError, match=r"causal 1D.*'blocks.0.conv' is centred"):
        stream(centred)
    with pytest.raises(ValueError, match=r"_MyBlock \(the model itself\).*per_step_modules"):
        stream(_MyBlock())
    with pytest.raises(ValueError, match="Conv1d at '1'"):
        stream(nn.Sequential(CKConv(2, 2, kernel_size=4, causal=True), nn.Conv1d(2, 2, 3)))
    ok = CKCNN(1, 2, input_size=16, hidden_channels=4, norm="layer", head="none")
    s = stream(ok)
    s.step(torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match=r"batch size 2.*reset"):
        s.step(torch.randn(3, 1, 3))


def test_stream_user_module_declared_per_step():
    torch.manual_seed(6)
    block = _MyBlock().eval()
    s = stream(block, per_step_modules=(_MyBlock,))
    x = torch.randn(2, 3, 40)
    with torch.no_grad():
        torch.testing.assert_close(_run(s, x, 8), block(x), rtol=1e-4, atol=1e-5)
