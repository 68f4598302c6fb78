"""The kernel-fitting study of the CKConv paper (Sec. 4.2, Figs. 4 and 7, Appx. B).

Can a kernel network represent a long, non-smooth kernel?  Each network in :data:`FIT_NETS` is
fitted by Adam, on its own, to each target in :data:`TARGETS`, sampled at ``length`` points of
``[-1, 1]``; the study reports the final mean squared error per (network, target) pair and draws
the fits.  The paper's finding: MLPs with ReLU, LeakyReLU or Swish (with the default or the
uniform-knot initialisation of Appx. B.1) fit smooth, simple targets but fail by a large margin
on non-smooth or oscillating ones; Sine networks (SIREN) fit them; MAGNet (FlexConv / CCNN)
fits them too.

The ``ckconv fit-kernel`` command (in the app) runs the study.  The library functions are
:func:`make_target`, :func:`build_fit_net`, :func:`fit_kernel_net`, :func:`run_fit_study`,
:func:`format_fit_table` and :func:`plot_fit_study` (matplotlib is imported inside it only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ckconv._checks import choice, int_at_least, positive_int, positive_number
from ckconv.data.synthetic import KERNEL_TARGETS
from ckconv.grids import kernel_grid
from ckconv.kernelnets import MLP, SIREN, KernelNet, MAGNet, RFFNet

__all__ = [
    "DEFAULT_NETS",
    "DEFAULT_TARGETS",
    "FIT_NETS",
    "TARGETS",
    "FitResult",
    "FitSettings",
    "FitStudy",
    "build_fit_net",
    "fit_kernel_net",
    "format_fit_table",
    "make_target",
    "plot_fit_study",
    "run_fit_study",
]


# ----------------------------------------------------------------------------- targets
#: Target kernels ``f(x)`` on ``x in [-1, 1]`` (CKConv Figs. 4 and 7): the data layer's
#: :data:`ckconv.data.synthetic.KERNEL_TARGETS` (also the ``kernel_fitting`` task's targets).
TARGETS = KERNEL_TARGETS
#: The targets ``ckconv fit-kernel`` fits by default: all of :data:`TARGETS`.
DEFAULT_TARGETS: tuple[str, ...] = tuple(TARGETS)


def make_target(
    name: str, length: int, *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample target ``name`` of :data:`TARGETS` on ``length`` points of ``[-1, 1]``.

    The positions are the kernel grid a CKConv with ``kernel_size=length`` samples
    (``linspace(-1, 1, length)``).  ``seed`` fixes the random targets (``"noise"``).

    Returns:
        ``(positions, values)`` of shapes ``(length, 1)`` and ``(length,)``.

    Examples:
        >>> x, y = make_target("step", 5)
        >>> x[:, 0].tolist(), y.tolist()
        ([-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 0.0, 1.0, 1.0, 1.0])
    """
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; expected one of {list(TARGETS)}")
    int_at_least("length", length, 2)
    positions = kernel_grid(length, dtype=torch.float64)
    generator = torch.Generator().manual_seed(int(seed))
    values = TARGETS[name][1](positions[:, 0], generator)
    return positions.to(dtype), values.to(dtype)


# ----------------------------------------------------------------------------- networks
@dataclass(frozen=True)
class FitSettings:
    """Sizes and priors of the fitted networks and the optimiser settings.

    Attributes:
        length: samples of each target on ``[-1, 1]``.
        steps: Adam steps per fit (full batch: every sample in every step).
        lr: Adam learning rate (the same for every network), annealed to 0 with a cosine
            schedule.
        hidden: width of the MLPs and the SIREN (3 linear layers each: ``1 -> hidden -> hidden
            -> 1``) and of the RFF network (``hidden`` Fourier features, then 2 linear layers).
        magnet_hidden: filters per layer of the MAGNet (4 filters / linear layers), chosen so
            its parameter count is close to the others'.
        mlp_norm: ``None`` or ``"layer"`` (LayerNorm in the ReLU / LeakyReLU / Swish MLPs, as in
            the paper's Appx. D.1 variant).
        siren_omega_0: SIREN frequency prior.
        magnet_omega_0: MAGNet frequency scale.
        rff_omega_0: standard deviation of the random Fourier feature frequencies.
        seed: initialisation seed (every fit starts from this seed) and seed of random targets.
    """

    length: int = 1000
    steps: int = 1000
    lr: float = 1e-2
    hidden: int = 64
    magnet_hidden: int = 32
    mlp_norm: str | None = None
    siren_omega_0: float = 60.0
    magnet_omega_0: float = 50.0
    rff_omega_0: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "hidden", "magnet_hidden"):
            positive_int(name, getattr(self, name))
        int_at_least("length", self.length, 2)
        for name in ("lr", "siren_omega_0", "magnet_omega_0", "rff_omega_0"):
            positive_number(name, getattr(self, name))
        choice("mlp_norm", self.mlp_norm, (None, "layer"))


def _mlp(activation: str, init: str) -> Callable[[FitSettings], KernelNet]:
    def build(s: FitSettings) -> KernelNet:
        return MLP(1, 1, s.hidden, 3, activation=activation, init=init, norm=s.mlp_norm)

    return build


#: The fitted networks: ``name -> (label, builder(settings))``.  ``*_uniform`` are the MLPs with
#: the uniform-knot initialisation of the CKConv paper's Appx. B.1 ("Unif-Init").
FIT_NETS: dict[str, tuple[str, Callable[[FitSettings], KernelNet]]] = {
    "relu": ("ReLU", _mlp("relu", "default")),
    "relu_uniform": ("ReLU, unif. knots", _mlp("relu", "uniform_knots")),
    "leaky_relu": ("LeakyReLU", _mlp("leaky_relu", "default")),
    "leaky_relu_uniform": ("LeakyReLU, unif. knots", _mlp("leaky_relu", "uniform_knots")),
    "swish": ("Swish", _mlp("swish", "default")),
    "swish_uniform": ("Swish, unif. knots", _mlp("swish", "uniform_knots")),
    "gelu": ("GELU", _mlp("gelu", "default")),
    "siren": ("SIREN (Sine)", lambda s: SIREN(1, 1, s.hidden, 3, omega_0=s.siren_omega_0)),
    "magnet": ("MAGNet", lambda s: MAGNet(1, 1, s.magnet_hidden, 4, omega_0=s.magnet_omega_0)),
    "rff": ("RFF + ReLU", lambda s: RFFNet(1, 1, s.hidden, 2, omega_0=s.rff_omega_0)),
}
#: The networks ``ckconv fit-kernel`` fits by default (every one of :data:`FIT_NETS` but GELU,
#: which the paper does not show).
DEFAULT_NETS: tuple[str, ...] = tuple(name for name in FIT_NETS if name != "gelu")


def build_fit_net(name: str, settings: FitSettings | None = None) -> KernelNet:
    """Build network ``name`` of :data:`FIT_NETS` (``1 -> 1`` kernel net) with ``settings``.

    Examples:
        >>> net = build_fit_net("siren")
        >>> type(net).__name__, net.hidden, net.omega_0
        ('SIREN', 64, 60.0)
    """
    if name not in FIT_NETS:
        raise ValueError(f"unknown network {name!r}; expected one of {list(FIT_NETS)}")
    return FIT_NETS[name][1](settings or FitSettings())


# ----------------------------------------------------------------------------- fitting
@dataclass
class FitResult:
    """One fit: network ``net`` on target ``target``.

    Attributes:
        target, net: names in :data:`TARGETS` and :data:`FIT_NETS`.
        mse: mean squared error of the final network on the target samples.
        params: trainable parameters of the network.
        seconds: wall time of the fit.
        fitted: the network's output on the target positions after fitting, ``(length,)``.
        history: training loss every ``steps // 50`` steps (for curves).
    """

    target: str
    net: str
    mse: float
    params: int
    seconds: float
    fitted: torch.Tensor
    history: list[float] = field(default_factory=list)


def fit_kernel_net(
    net: torch.nn.Module,
    positions: torch.Tensor,
    values: torch.Tensor,
    *,
    steps: int = 1000,
    lr: float = 1e-2,
) -> tuple[float, torch.Tensor, list[float]]:
    """Fit ``net`` (``(L, 1) -> (L, 1)``) to ``values`` by full-batch Adam on the MSE.

    The learning rate follows a cosine schedule from ``lr`` to 0 over ``steps``.

    Returns:
        ``(mse, fitted, history)``: the final MSE (computed in float64 after training), the
        network's output ``(L,)`` and the training loss every ``max(1, steps // 50)`` steps.
    """
    if positions.dim() != 2 or positions.shape[1] != 1:
        raise ValueError(f"positions must have shape (L, 1), got {tuple(positions.shape)}")
    if values.shape != positions.shape[:1]:
        raise ValueError(
            f"values must have shape ({positions.shape[0]},) to match positions, "
            f"got {tuple(values.shape)}"
        )
    positive_int("steps", steps)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    every = max(1, steps // 50)
    history: list[float] = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = (net(positions)[:, 0] - values).square().mean()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % every == 0:
            history.append(float(loss.detach()))
    with torch.no_grad():
        fitted = net(positions)[:, 0]
        mse = float((fitted.double() - values.double()).square().mean())
    return mse, fitted.detach(), history


@dataclass
class FitStudy:
    """All fits of a study: ``results[(net, target)]``, the targets and the settings."""

    settings: FitSettings
    targets: dict[str, torch.Tensor]
    positions: torch.Tensor
    results: dict[tuple[str, str], FitResult]

    @property
    def nets(self) -> list[str]:
        """Network names in the order they were fitted."""
        return list(dict.fromkeys(net for net, _ in self.results))

    def mse(self, net: str, target: str) -> float:
        """Final MSE of ``net`` on ``target``."""
        return self.results[(net, target)].mse


def _check_names(kind: str, names: Sequence[str], known: dict) -> list[str]:
    names = list(names)
    if not names:
        raise ValueError(f"no {kind}s given; expected some of {list(known)}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {kind}(s) {unknown}; expected some of {list(known)}")
    return names


def run_fit_study(
    targets: Sequence[str] = DEFAULT_TARGETS,
    nets: Sequence[str] = DEFAULT_NETS,
    settings: FitSettings | None = None,
    *,
    threads: int | None = 1,
    progress: Callable[[str], None] | None = None,
) -> FitStudy:
    """Fit every network in ``nets`` to every target in ``targets``.

    Each fit starts from ``torch.manual_seed(settings.seed)`` inside
    :func:`torch.random.fork_rng`, so fits are reproducible and the caller's random state is
    left untouched.  ``progress`` receives one line per finished fit.

    ``threads``: torch intra-op threads during the study (restored afterwards; ``None`` keeps
    the current setting).  The default is 1: the networks are so small that more threads only
    add synchronisation, and on a busy machine they made the fits ~30x slower.

    Examples:
        >>> s = FitSettings(length=64, steps=20)
        >>> study = run_fit_study(["step"], ["relu", "siren"], s)
        >>> sorted(study.results)
        [('relu', 'step'), ('siren', 'step')]
    """
    settings = settings or FitSettings()
    targets = _check_names("target", targets, TARGETS)
    nets = _check_names("network", nets, FIT_NETS)
    positive_int("threads", threads, allow_none=True)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(targets, nets, settings, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _run(
    targets: list[str],
    nets: list[str],
    settings: FitSettings,
    progress: Callable[[str], None] | None,
) -> FitStudy:
    sampled = {name: make_target(name, settings.length, seed=settings.seed) for name in targets}
    positions = next(iter(sampled.values()))[0]
    results: dict[tuple[str, str], FitResult] = {}
    total, done = len(targets) * len(nets), 0
    for net_name in nets:
        for target in targets:
            values = sampled[target][1]
            start = time.perf_counter()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(settings.seed)
                net = build_fit_net(net_name, settings)
                mse, fitted, history = fit_kernel_net(
                    net, positions, values, steps=settings.steps, lr=settings.lr
                )
            seconds = time.perf_counter() - start
            params = sum(p.numel() for p in net.parameters() if p.requires_grad)
            results[(net_name, target)] = FitResult(
                target, net_name, mse, params, seconds, fitted, history
            )
            done += 1
            if progress is not None:
                progress(
                    f"[{done}/{total}] {net_name:<20} {target:<11} mse {mse:.2e}  ({seconds:.1f} s)"
                )
    return FitStudy(settings, {k: v[1] for k, v in sampled.items()}, positions, results)


# ----------------------------------------------------------------------------- reporting
def format_fit_table(study: FitStudy) -> str:
    """The MSE table as Markdown: one row per network (label, parameters), one column per target.

    The first row, ``best constant``, is each target's variance: the MSE of predicting its mean,
    the score of a network that learned nothing about the target's shape.
    """
    targets = list(study.targets)
    header = ["network", "params", *targets]
    rows = [
        [
            "best constant (variance)",
            "",
            *[_fmt(float(study.targets[t].double().var(unbiased=False))) for t in targets],
        ]
    ]
    for net in study.nets:
        params = study.results[(net, targets[0])].params
        rows.append([FIT_NETS[net][0], f"{params:,}", *[_fmt(study.mse(net, t)) for t in targets]])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "| " + " | ".join(out) + " |"

    sep = (
        "|"
        + "|".join("-" * (w + 1) + ":" if i else ":" + "-" * (w + 1) for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def _fmt(value: float) -> str:
    return f"{value:.1e}"


# matplotlib's tab10 without its grey (the target's colour)
_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")


def plot_fit_study(study: FitStudy, *, cell_size: tuple[float, float] = (1.9, 1.05)):
    """Grid picture of the study: one row per target, one column per network.

    Each panel draws the target (grey) and the fit (colour) with the fit's MSE in the title.
    Returns a :class:`matplotlib.figure.Figure` (Agg backend; nothing is shown).
    """
    from ckconv.viz.kernels import pyplot

    plt = pyplot()
    targets, nets = list(study.targets), study.nets
    x = study.positions[:, 0].numpy()
    fig, axes = plt.subplots(
        len(targets),
        len(nets),
        figsize=(cell_size[0] * len(nets) + 0.6, cell_size[1] * len(targets) + 0.5),
        squeeze=False,
        sharex=True,
    )
    for i, target in enumerate(targets):
        y = study.targets[target].numpy()
        span = float(y.max() - y.min()) or 1.0
        for j, net in enumerate(nets):
            ax = axes[i, j]
            result = study.results[(net, target)]
            ax.plot(x, y, color="0.6", lw=1.4)
            ax.plot(x, result.fitted.numpy(), color=_COLOURS[j % len(_COLOURS)], lw=0.8)
            ax.set_ylim(float(y.min()) - 0.15 * span, float(y.max()) + 0.15 * span)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"mse {result.mse:.1e}", fontsize=7, pad=2)
            if i == 0:
                ax.annotate(
                    FIT_NETS[net][0], (0.5, 1.32), xycoords="axes fraction",
                    ha="center", fontsize=8, fontweight="bold",
                )  # fmt: skip
            if j == 0:
                ax.set_ylabel(target, fontsize=8)
    s = study.settings
    fig.suptitle(
        f"Fitting {s.length}-sample kernels: {s.steps} Adam steps, lr {s.lr:g} "
        "(grey: target, colour: fit)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.6, w_pad=0.3)
    return fig
