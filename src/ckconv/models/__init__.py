"""The papers' networks (CKCNN, CCNN) and the discrete baselines they compare to."""

from ckconv.models.baselines import RNN, TCN, ResNet
from ckconv.models.ccnn import CCNN, CCNN_PRESETS, CCNNBlock
from ckconv.models.ckcnn import CKCNN, CKCNNBlock
from ckconv.models.registry import MODEL_NAMES, build_model

__all__ = [
    "CCNN",
    "CCNN_PRESETS",
    "CKCNN",
    "MODEL_NAMES",
    "RNN",
    "TCN",
    "CCNNBlock",
    "CKCNNBlock",
    "ResNet",
    "build_model",
]
