"""torch.compile and torch.export give eager's numbers: every layer and model, eager and
inductor backends, outputs and gradients; graph breaks counted with torch._dynamo.explain.

The oracle is the same module run eagerly (compile must not change what is computed).
Inductor compiles C++ on the CPU (gcc): tens of seconds per model with a cold cache, so those
cases are marked slow; the eager backend (dynamo's tracing, guards and graph breaks, without
code generation) runs in the default suite.
"""

from __future__ import annotations

import copy
import importlib

import pytest
import torch
import torch._dynamo

from ckconv.models import CCNN, CKCNN, PointCCNN
from ckconv.nn import CKConv, FlexConv, PointConv, PointFlexConv


def _cpp_compiler() -> str | None:
    """The C++ compiler inductor would use on the CPU (``CXX`` or ``g++``), or None."""
    from torch._inductor import cpp_builder, exc

    try:
        return cpp_builder.get_cpp_compiler()
    except exc.InvalidCxxCompiler:
        return None


def _skip_without_cpp_compiler() -> None:
    # inductor generates and compiles C++ for the CPU: without a compiler it cannot run at all
    # (checked when an inductor test runs, so collecting the default suite imports no inductor)
    if _cpp_compiler() is None:
        pytest.skip(
            "torch.compile(backend='inductor') on the CPU compiles C++ and no C++ compiler "
            "was found (set CXX or install g++)"
        )


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _make(kind: str):
    """A small instance of each layer / model kind and its inputs (fixed seed)."""
    torch.manual_seed(0)
    if kind == "ckconv":
        return CKConv(3, 4, kernel_size="same", input_size=17, causal=True), (
            torch.randn(2, 3, 17),
        )
    if kind == "ckconv_fft":  # 60 dense taps: method="auto" takes the FFT path
        layer = CKConv(3, 4, kernel_size="same", input_size=60, causal=True)
        return layer, (torch.randn(2, 3, 60),)
    if kind == "flexconv2d_fft":  # a wide mask: 21 x 21 depthwise taps, the FFT path
        layer = FlexConv(3, 4, data_dim=2, kernel_size=33, separable=True, mask_init_sigma=0.3)
        return layer, (torch.randn(2, 3, 14, 13),)
    if kind == "ckconv2d":
        return CKConv(2, 3, data_dim=2, kernel_size=5), (torch.randn(2, 2, 9, 8),)
    if kind == "flexconv":
        layer = FlexConv(3, 4, kernel_size="same", input_size=40, separable=True, causal=True)
        return layer, (torch.randn(2, 3, 40),)
    if kind == "flexconv2d":
        return FlexConv(3, 4, data_dim=2, kernel_size=17, separable=True), (
            torch.randn(2, 3, 12, 11),
        )
    if kind == "ccnn":
        model = CCNN(1, 5, input_size=24, hidden_channels=6, num_blocks=2, dropout=0.0)
        return model, (torch.randn(3, 1, 24),)
    if kind == "ckcnn":
        return CKCNN(1, 5, input_size=10, hidden_channels=6), (torch.randn(3, 1, 10),)
    if kind == "pointconv":
        layer = PointConv(4, 6, num_neighbors=6, scale=0.5)
        return layer, (torch.randn(2, 4, 30), torch.rand(2, 30, 3))
    if kind == "pointflexconv":
        layer = PointFlexConv(4, 6, separable=True, num_neighbors=6, mask_init_sigma=0.3)
        return layer, (torch.randn(2, 4, 30), torch.rand(2, 30, 3))
    if kind == "pointccnn":
        model = PointCCNN(6, 5, hidden_channels=6, num_blocks=2, num_neighbors=6)
        return model, (torch.randn(3, 6, 30),)
    raise AssertionError(kind)


KINDS = [
    "ckconv",
    "ckconv_fft",
    "flexconv2d_fft",
    "ckconv2d",
    "flexconv",
    "flexconv2d",
    "ccnn",
    "ckcnn",
    "pointconv",
    "pointflexconv",
    "pointccnn",
]


def _outputs_and_grads(module, inputs, call=None):
    """Output of ``call`` (default ``module``) and the gradients it leaves on ``module``."""
    module.zero_grad(set_to_none=True)
    out = (module if call is None else call)(*inputs)
    # a loss that weights every output differently, so a permuted output would not pass
    weights = torch.linspace(-1.0, 2.0, out.numel()).view_as(out)
    (out * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return out.detach(), grads


#: Kinds whose kernel grid does not depend on a learned value: no graph break at all.
FIXED = {"ckconv", "ckconv_fft", "ckconv2d", "ckcnn", "pointconv", "pointflexconv", "pointccnn"}


def _close(got, want, rtol, atol, what):
    # atol relative to the tensor's scale: compiled FFT convolutions take the batched path,
    # eager ones on the CPU the blocked engine (same maths, other float32 rounding)
    scale = max(1.0, float(want.abs().max()))
    torch.testing.assert_close(
        got, want, rtol=rtol, atol=atol * scale, msg=lambda m: f"{what}: {m}"
    )


def _check_compiled_equals_eager(kind, backend, rtol, atol, fullgraph=False):
    model, inputs = _make(kind)
    model.train()
    reference = copy.deepcopy(model)
    compiled = torch.compile(model, backend=backend, fullgraph=fullgraph)
    out, grads = _outputs_and_grads(model, inputs, call=compiled)
    want_out, want_grads = _outputs_and_grads(reference, inputs)
    _close(out, want_out, rtol, atol, "output")
    assert grads.keys() == want_grads.keys() and len(grads) > 0
    for name in grads:
        _close(grads[name], want_grads[name], rtol, atol, name)


@pytest.mark.parametrize("kind", KINDS)
def test_compile_eager_backend_gives_eager_outputs_and_gradients(kind):
    # fixed-size kernels compile with fullgraph=True (it raises on any graph break)
    _check_compiled_equals_eager(kind, "eager", rtol=1e-4, atol=1e-5, fullgraph=kind in FIXED)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_compile_inductor_gives_eager_outputs_and_gradients(kind):
    _skip_without_cpp_compiler()
    # inductor fuses and reorders float32 arithmetic: agreement to float32 rounding
    _check_compiled_equals_eager(kind, "inductor", rtol=1e-4, atol=1e-5, fullgraph=kind in FIXED)


def test_fixed_size_kernel_model_is_one_graph():
    model, inputs = _make("ckconv_fft")
    explanation = torch._dynamo.explain(model)(*inputs)
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1


@pytest.mark.parametrize("kind", ["flexconv2d_fft", "ccnn"])
def test_learned_crop_is_the_only_graph_break(kind):
    model, inputs = _make(kind)
    # default dynamo config: every break is the crop's read of sigma; dynamo unwinds the
    # Python frames around it (forward -> kernel -> kernel_axes -> ...), and explain counts
    # the break once for each of them
    explanation = torch._dynamo.explain(model)(*inputs)
    assert explanation.graph_break_count > 0
    assert all("_sigma_crop" in str(r.reason) for r in explanation.break_reasons)


@pytest.mark.parametrize("kind", ["flexconv"])
def test_learned_crop_is_one_graph_break_with_nested_graph_breaks(kind):
    model, inputs = _make(kind)
    with torch._dynamo.config.patch(nested_graph_breaks=True):
        explanation = torch._dynamo.explain(model)(*inputs)
        assert explanation.graph_break_count == 1
        assert explanation.graph_count == 2
        torch._dynamo.reset()
        _check_compiled_equals_eager(kind, "eager", rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compiled_ccnn_leaves_the_graph_once_per_flexconv(monkeypatch):
    # the crop read runs eagerly (outside the graph): count its calls in one compiled forward
    fck = importlib.import_module("ckconv.functional.ckconv")  # the module, not the function
    calls = []
    original = fck.crop_counts

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fck, "crop_counts", counting)
    model, inputs = _make("ccnn")
    compiled = torch.compile(model, backend="eager")
    compiled(*inputs)  # compiles
    calls.clear()
    out = compiled(*inputs)
    assert len(calls) == len(model.blocks) == 2
    torch.testing.assert_close(out, model(*inputs), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_changing_crop_recompiles_once_then_runs_dynamic():
    # sigma moves during training: the crop size changes often; after one recompile per frame
    # dynamo treats the crop length as dynamic, so later sizes run without recompiling
    torch.manual_seed(0)
    layer = FlexConv(3, 4, kernel_size="same", input_size=120, separable=True, causal=True)
    compiled = torch.compile(layer, backend="eager")
    x = torch.randn(2, 3, 120)
    sizes = []
    from torch._dynamo.utils import counters

    counters.clear()
    for sigma in (0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4):
        with torch.no_grad():
            layer.kernel_mask.sigma.fill_(sigma)
        torch.testing.assert_close(compiled(x), layer(x), rtol=1e-4, atol=1e-5)
        sizes.append(layer.cropped_kernel_size()[0])
    assert len(set(sizes)) == 7  # every step had a new crop size
    graphs_after_first = counters["stats"]["unique_graphs"]
    with torch.no_grad():
        layer.kernel_mask.sigma.fill_(0.45)
    compiled(x)
    assert counters["stats"]["unique_graphs"] == graphs_after_first


@pytest.mark.parametrize("kind", ["ckconv_fft", "ckconv2d", "ckcnn"])
def test_unbaked_ckconv_models_export(kind):
    model, inputs = _make(kind)
    model.eval()
    program = torch.export.export(model, inputs)
    with torch.no_grad():
        want = model(*inputs)
        torch.testing.assert_close(program.module()(*inputs), want, rtol=1e-4, atol=1e-5)
        # the program is a function of the parameters: a changed parameter changes its output
        other = copy.deepcopy(model)
        for p in other.parameters():
            p.add_(0.1)
        program_other = torch.export.export(other, inputs)
        torch.testing.assert_close(
            program_other.module()(*inputs), other(*inputs), rtol=1e-4, atol=1e-5
        )
        assert not torch.allclose(program_other.module()(*inputs), want)


def test_reloaded_layer_compiles_with_the_checkpoints_kernel_size():
    # the kernel grid is read from the state dict on load; the compiled layer sees the new size
    torch.manual_seed(1)
    trained = CKConv(2, 3, kernel_size=9, causal=True)
    fresh = CKConv(2, 3, kernel_size=5, causal=True)
    fresh.load_state_dict(trained.state_dict())
    assert fresh.kernel_size == (9,)
    x = torch.randn(2, 2, 20)
    compiled = torch.compile(fresh, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), trained(x), rtol=1e-5, atol=1e-6)
