"""The metrics a run logs, each with the direction that is better: one definition that the
checkpoint choice, the plateau scheduler and the rate tables read."""

from __future__ import annotations

from dataclasses import dataclass

from ckconv.app.config import ConfigError

__all__ = ["METRICS", "Metric", "format_metric", "metric_of"]


@dataclass(frozen=True)
class Metric:
    """A logged quantity (``<stage>/<name>``): whether higher is better, and whether it is a
    fraction (printed as a percentage)."""

    name: str
    higher_is_better: bool
    fraction: bool = False

    @property
    def mode(self) -> str:
        """``"max"`` or ``"min"``: what Lightning's checkpoint and plateau callbacks call it."""
        return "max" if self.higher_is_better else "min"

    def format(self, value: float) -> str:
        """The number as every command prints it: fractions as percentages (two decimals, the
        unit left to the caller), other values to four decimals."""
        return f"{100 * value:.2f}" if self.fraction else f"{value:.4f}"


def format_metric(key: str, value: float) -> str:
    """``"val/acc", 0.7621`` -> ``"76.21 %"``; a loss -> ``"0.4123"``; keys of no known metric
    to four decimals as well. JSON output keeps the raw values."""
    metric = METRICS.get(key.rsplit("/", 1)[-1])
    if metric is None:
        return f"{value:.4f}"
    return metric.format(value) + (" %" if metric.fraction else "")


#: Every metric the app logs, by name (``loss_epoch``: Lightning's per-epoch training loss).
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("acc", True, fraction=True),
        Metric("auroc", True, fraction=True),
        Metric("bpc", False),
        Metric("mse", False),
        Metric("loss", False),
        Metric("loss_epoch", False),
    )
}


def metric_of(key: str, setting: str = "trainer.monitor") -> Metric:
    """The :class:`Metric` of a logged key such as ``val/acc`` (or a bare name ``acc``);
    ``setting`` names the config key or option the key came from in the error."""
    name = key.rsplit("/", 1)[-1]
    if name not in METRICS:
        raise ConfigError(
            f"{setting}: {key!r} is not a metric the app logs ({', '.join(METRICS)} after "
            "train/, val/ or test/); set trainer.monitor_mode: max or min for other keys"
        )
    return METRICS[name]
