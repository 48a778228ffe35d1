"""SplitRec's Python API: ``Federation`` drives a job from a script or a
notebook; callbacks watch and steer its training."""

from splitrec.api.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    FitInfo,
    LambdaCallback,
    ModelCheckpoint,
    ProgressReport,
    TensorBoard,
    TrainingControl,
)
from splitrec.api.federation import Export, Federation, Prediction
from splitrec.api.history import History
from splitrec.api.models import custom_model
from splitrec.api.scoring import ScoringClient

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "Export",
    "Federation",
    "FitInfo",
    "History",
    "LambdaCallback",
    "ModelCheckpoint",
    "Prediction",
    "ProgressReport",
    "ScoringClient",
    "TensorBoard",
    "TrainingControl",
    "custom_model",
]
