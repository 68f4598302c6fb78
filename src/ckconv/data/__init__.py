"""Datasets, file formats and transforms for the CKConv / CCNN tasks (independent of the models).

Nothing is downloaded at import time; every dataset takes a local ``root``. See
:mod:`ckconv.data.registry` for the task table (``ckconv data list`` prints it).
"""

from ckconv.data._common import DataFileError
from ckconv.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    extract_archive,
    verify_checksum,
)
from ckconv.data.images import CIFAR10, CIFAR100, MNIST, STL10, Digits
from ckconv.data.lra import ListOps, LRAImage, LRAText, Pathfinder
from ckconv.data.modelnet import ModelNet
from ckconv.data.physionet import PhysioNet2019
from ckconv.data.ptb import CharPTB
from ckconv.data.registry import TASKS, list_tasks, make_datasets
from ckconv.data.speech import MFCC, SpeechCommands
from ckconv.data.synthetic import AddingProblem, CopyMemory
from ckconv.data.transforms import (
    ChannelNormalize,
    DropSamples,
    PaddedBatch,
    Subsample,
    TimestampBatch,
    pad_collate,
    resize_image,
    subsample,
    timestamp_collate,
)
from ckconv.data.uea import CharacterTrajectories, UEADataset, read_arff, read_ts

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MFCC",
    "MNIST",
    "STL10",
    "TASKS",
    "AddingProblem",
    "ChannelNormalize",
    "CharPTB",
    "CharacterTrajectories",
    "ChecksumError",
    "CopyMemory",
    "DataFileError",
    "Digits",
    "DownloadError",
    "DropSamples",
    "LRAImage",
    "LRAText",
    "ListOps",
    "ModelNet",
    "PaddedBatch",
    "Pathfinder",
    "PhysioNet2019",
    "SpeechCommands",
    "Subsample",
    "TimestampBatch",
    "UEADataset",
    "UnsafeArchiveError",
    "extract_archive",
    "list_tasks",
    "make_datasets",
    "pad_collate",
    "read_arff",
    "read_ts",
    "resize_image",
    "subsample",
    "timestamp_collate",
    "verify_checksum",
]

from ckconv.data.shapes import SyntheticShapes

__all__ += ["SyntheticShapes"]
