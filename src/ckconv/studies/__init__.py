"""Studies of the papers that are not training runs: the kernel-fitting study (CKConv Figs. 4, 7)."""

from ckconv.studies.fit_kernel import (
    DEFAULT_NETS,
    DEFAULT_TARGETS,
    FIT_NETS,
    TARGETS,
    FitResult,
    FitSettings,
    FitStudy,
    build_fit_net,
    fit_kernel_net,
    format_fit_table,
    make_target,
    plot_fit_study,
    run_fit_study,
)

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
