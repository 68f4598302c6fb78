"""Third-party warnings and log lines that tell the user nothing they can act on, silenced at the
source: Lightning's that do not apply to runs built by this app, and the ONNX exporter's."""

from __future__ import annotations

import contextlib
import logging
import warnings

__all__ = ["expected_warnings_silenced"]

# Lightning warnings that do not apply to runs built here: the batch sampler is resumable (but
# not through Lightning's loader protocol), loaders default to no worker processes, tiny test
# runs log less often than they have steps, and resumed runs reuse their checkpoint folder.
_EXPECTED_WARNINGS = (
    r".*resuming from a checkpoint that ended before the epoch ended.*",
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*isinstance\(treespec, LeafSpec\).*",
    # syncbn.py's differentiable all-reduce: torch names a private module
    # (torch.distributed._functional_collectives) as the replacement; nothing for a user to do
    r".*torch\.distributed\.nn\.functional\.all_reduce is deprecated.*",
)

# Loggers whose warnings are about other packages' operators: the ONNX exporter lists every
# torchvision operator it could register when torchvision is not installed.
_QUIET_LOGGERS = ("torch.onnx._internal.exporter._registration",)


class _DropAdvert(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


@contextlib.contextmanager
def expected_warnings_silenced(quiet: bool = False):
    """Silence the warnings above (and, with ``quiet``, Lightning's info lines)."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    added = []
    for handler in lightning_log.handlers:
        if not any(isinstance(f, _DropAdvert) for f in handler.filters):
            handler.addFilter(flt := _DropAdvert())
            added.append((handler, flt))
    if quiet:
        lightning_log.setLevel(logging.WARNING)
    others = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [log.level for log in others]
    for log in others:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for pattern in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        lightning_log.setLevel(level)
        for log, old in zip(others, levels):
            log.setLevel(old)
        for handler, flt in added:
            handler.removeFilter(flt)
