"""Modules: continuous convolutions and their helpers."""

from ckconv.nn.base import ContinuousConv, continuous_convs
from ckconv.nn.ckconv import CKConv
from ckconv.nn.flexconv import FlexConv
from ckconv.nn.gaussian_mask import GaussianMask
from ckconv.nn.hyena import DepthwiseCKConv, Hyena, ShortConv
from ckconv.nn.optim import kernel_net_parameters, mask_parameters, param_groups
from ckconv.nn.pointconv import PointConv, PointFlexConv
from ckconv.nn.regularizers import aliasing_penalty, kernel_l2

__all__ = [
    "CKConv",
    "ContinuousConv",
    "DepthwiseCKConv",
    "FlexConv",
    "GaussianMask",
    "Hyena",
    "PointConv",
    "PointFlexConv",
    "ShortConv",
    "aliasing_penalty",
    "continuous_convs",
    "kernel_l2",
    "kernel_net_parameters",
    "mask_parameters",
    "param_groups",
]
