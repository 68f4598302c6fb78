"""Modules: continuous convolutions and their helpers."""

from ckconv.nn.ckconv import CKConv
from ckconv.nn.flexconv import FlexConv, GaussianMask
from ckconv.nn.optim import mask_parameters, param_groups
from ckconv.nn.pointconv import PointConv, PointFlexConv
from ckconv.nn.regularizers import aliasing_penalty, kernel_l2

__all__ = [
    "CKConv",
    "FlexConv",
    "GaussianMask",
    "PointConv",
    "PointFlexConv",
    "aliasing_penalty",
    "kernel_l2",
    "mask_parameters",
    "param_groups",
]
