"""The papers' networks (CKCNN, CCNN) and the discrete baselines they compare to."""

from ckconv.models.baselines import RNN, TCN, ResNet
from ckconv.models.ccnn import CCNN, CCNN_PRESETS, CCNNBlock
from ckconv.models.ckcnn import CKCNN, CKCNNBlock
from ckconv.models.point_ccnn import POINT_CCNN_PRESETS, PointCCNN, PointCCNNBlock
from ckconv.models.registry import MODEL_NAMES, build_model

__all__ = [
    "CCNN",
    "CCNN_PRESETS",
    "CKCNN",
    "MODEL_NAMES",
    "POINT_CCNN_PRESETS",
    "RNN",
    "TCN",
    "CCNNBlock",
    "CKCNNBlock",
    "PointCCNN",
    "PointCCNNBlock",
    "ResNet",
    "build_model",
]
