"""The papers' networks (CKCNN, CCNN), a Hyena network and the discrete baselines they compare
to; the model registry (build by name) and checkpoints that rebuild their model."""

from ckconv.models.baselines import RNN, TCN, ResNet
from ckconv.models.ccnn import CCNN, CCNN_PRESETS, CCNNBlock
from ckconv.models.checkpoint import (
    CheckpointError,
    ModelSpec,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from ckconv.models.ckcnn import CKCNN, CKCNNBlock
from ckconv.models.hyena import HYENA_PRESETS, HyenaBlock, HyenaNet
from ckconv.models.point_ccnn import POINT_CCNN_PRESETS, PointCCNN, PointCCNNBlock
from ckconv.models.registry import (
    MODEL_NAMES,
    MODELS,
    InputKind,
    ModelEntry,
    ModelOptionError,
    build_model,
    model_entry,
)

__all__ = [
    "CCNN",
    "CCNN_PRESETS",
    "CKCNN",
    "HYENA_PRESETS",
    "MODELS",
    "MODEL_NAMES",
    "POINT_CCNN_PRESETS",
    "RNN",
    "TCN",
    "CCNNBlock",
    "CKCNNBlock",
    "CheckpointError",
    "HyenaBlock",
    "HyenaNet",
    "InputKind",
    "ModelEntry",
    "ModelOptionError",
    "ModelSpec",
    "PointCCNN",
    "PointCCNNBlock",
    "ResNet",
    "build_model",
    "load_checkpoint",
    "model_entry",
    "read_checkpoint",
    "save_checkpoint",
]
