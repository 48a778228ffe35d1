"""The lean reference: the simplest centralized Keras DeepFM on the pooled data.

What a user would write with both parties' columns in one place, to measure the
split job against on the same machine. pandas reads the reference layout's two
CSVs and joins them on ID; the features are the split job's: UserID, Gender,
Age, Occupation and MovieID as indices (pandas categorical codes over every
row, built once before training) and Genres as a multi-hot row (one column per
genre), whose embedding is the sum of its genres' vectors (a bag: one field of
the FM, like every other field). The label is Rating > 3. A seeded permutation
keeps 10% of the rows for validation.

One Keras functional DeepFM: embeddings of 8 per field, first-order weights,
the FM interaction over the fields' vectors, a ReLU stack [256, 256, 32] over
their concatenation, one sigmoid output; Adam (0.001), binary cross-entropy,
AUC. ``model.fit`` reads a ``tf.data`` pipeline (tensor slices, seeded shuffle
of every training row, batch, prefetch).

``python -m splitrec.bench.lean --data FOLDER --batch 128`` prints one JSON
line: the steady samples per second of the last epoch (from the end of its 10th
batch to the end of its last, as the split job's ``steady_samples_per_second``),
the last epoch's seconds, the validation AUC (``model.evaluate``), the peak RSS
(VmHWM) and the CPUs the process ran on. ``--cores`` pins the process before
TensorFlow is imported, so that its thread pools are sized for and made inside
that set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from splitrec.bench.setup import ROOT
from splitrec.datasets.movielens.layouts import ALICE_CSV, BOB_CSV

SEED = 1234
VALIDATION_FRACTION = 0.1
EMBEDDING_DIM = 8
DEEP_UNITS = (256, 256, 32)
LEARNING_RATE = 0.001
# Batches of each epoch before the steady rate's first mark: tracing and warm-up.
WARMUP_BATCHES = 10
USER_FIELDS = ("UserID", "Gender", "Age", "Occupation")
INDEX_FIELDS = (*USER_FIELDS, "MovieID")
MULTI_HOT_FIELD = "Genres"
# Validation reads larger batches, as the split job's evaluation does.
MIN_EVAL_BATCH = 1024
if TYPE_CHECKING:
    import keras
    import numpy as np

RESULT_FILE = "lean.json"
LOG_FILE = "lean.log"


class EpochClock:
    """An epoch's seconds and its steady rate: samples per second from the end
    of batch ``WARMUP_BATCHES`` to the end of the last batch."""

    def __init__(self, rows: int, batch: int) -> None:
        self.rows = rows
        self.batch = batch
        self.begin()

    def begin(self) -> None:
        self.started = time.monotonic()
        self.seconds = float("nan")
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None

    def batch_done(self, index: int) -> None:
        """``index``: the 0-based batch that has just ended."""
        if index + 1 < WARMUP_BATCHES:
            return
        mark = (time.monotonic(), min((index + 1) * self.batch, self.rows))
        if self._first is None:
            self._first = mark
        else:
            self._last = mark

    def end(self) -> None:
        self.seconds = time.monotonic() - self.started

    def rate(self) -> float:
        """NaN for an epoch of no more than ``WARMUP_BATCHES`` batches."""
        if self._first is None or self._last is None:
            return float("nan")
        (t0, n0), (t1, n1) = self._first, self._last
        return (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")


def load(data: Path) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, int]]:
    """The joined rows as model inputs (name to array), the labels and each
    field's table size (every distinct value of the data set)."""
    import numpy as np
    import pandas as pd

    alice = pd.read_csv(data / ALICE_CSV, usecols=["ID", *USER_FIELDS])
    bob = pd.read_csv(
        data / BOB_CSV, usecols=["ID", "MovieID", "Rating", MULTI_HOT_FIELD]
    )
    rows = alice.merge(bob, on="ID")
    inputs, sizes = {}, {}
    for name in INDEX_FIELDS:
        codes = rows[name].astype("category").cat
        inputs[name] = codes.codes.to_numpy(np.int32)[:, None]
        sizes[name] = len(codes.categories)
    # One multi-hot row per distinct genre list, then spread over the rows.
    lists = rows[MULTI_HOT_FIELD].fillna("").astype("category").cat
    table = pd.Series(lists.categories).str.get_dummies(sep=" ")
    inputs[MULTI_HOT_FIELD] = table.to_numpy(np.float32)[lists.codes.to_numpy()]
    sizes[MULTI_HOT_FIELD] = table.shape[1]
    labels = (rows["Rating"].to_numpy() > 3).astype(np.float32)[:, None]
    return inputs, labels, sizes


def split(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row positions: a permutation seeded by ``SEED``."""
    import numpy as np

    order = np.random.default_rng(SEED).permutation(rows)
    validation = max(1, round(rows * VALIDATION_FRACTION))
    return order[validation:], order[:validation]


def build_model(sizes: dict[str, int]) -> keras.Model:
    """The compiled DeepFM over index fields and one multi-hot field."""
    import keras
    from keras import layers, ops

    inputs, vectors, weights = {}, [], []
    for name in INDEX_FIELDS:
        value = keras.Input(shape=(1,), dtype="int32", name=name)
        inputs[name] = value
        vectors.append(layers.Embedding(sizes[name], EMBEDDING_DIM)(value))
        weights.append(layers.Flatten()(layers.Embedding(sizes[name], 1)(value)))
    hot = keras.Input(shape=(sizes[MULTI_HOT_FIELD],), name=MULTI_HOT_FIELD)
    inputs[MULTI_HOT_FIELD] = hot
    bag = layers.Dense(EMBEDDING_DIM, use_bias=False, kernel_initializer="uniform")
    vectors.append(layers.Reshape((1, EMBEDDING_DIM))(bag(hot)))
    weights.append(layers.Dense(1, use_bias=False, kernel_initializer="uniform")(hot))

    fields = layers.Concatenate(axis=1)(vectors)  # [batch, fields, dim]
    total = ops.sum(fields, axis=1)
    fm = 0.5 * ops.sum(
        ops.square(total) - ops.sum(ops.square(fields), axis=1),
        axis=1,
        keepdims=True,
    )
    deep = layers.Flatten()(fields)
    for units in DEEP_UNITS:
        deep = layers.Dense(units, activation="relu")(deep)
    logit = layers.Add()([*weights, fm, layers.Dense(1)(deep)])
    model = keras.Model(inputs, layers.Activation("sigmoid")(logit), name="deepfm")
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    return model


def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def train(data: Path, batch: int, epochs: int) -> dict:
    """Prepares the data, trains, evaluates; returns the measurements."""
    started = time.monotonic()
    inputs, labels, sizes = load(data)
    train_rows, validation_rows = split(len(labels))
    prepare_seconds = time.monotonic() - started

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)

    def rows_of(positions: np.ndarray) -> tuple[dict, np.ndarray]:
        return {k: v[positions] for k, v in inputs.items()}, labels[positions]

    training = (
        tf.data.Dataset.from_tensor_slices(rows_of(train_rows))
        .shuffle(len(train_rows), seed=SEED)
        .batch(batch)
        .prefetch(tf.data.AUTOTUNE)
    )
    validation = (
        tf.data.Dataset.from_tensor_slices(rows_of(validation_rows))
        .batch(max(batch, MIN_EVAL_BATCH))
        .prefetch(tf.data.AUTOTUNE)
    )
    model = build_model(sizes)
    clock = EpochClock(len(train_rows), batch)
    timing = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: clock.begin(),
        on_train_batch_end=lambda index, logs: clock.batch_done(index),
        on_epoch_end=lambda epoch, logs: clock.end(),
    )
    model.fit(training, epochs=epochs, callbacks=[timing], shuffle=False, verbose=0)
    scores = model.evaluate(validation, verbose=0, return_dict=True)
    return {
        "mode": "lean",
        "rows": len(labels),
        "train_rows": len(train_rows),
        "validation_rows": len(validation_rows),
        "batch_size": batch,
        "epochs": epochs,
        "samples_per_second": clock.rate(),
        "epoch_seconds": clock.seconds,
        "prepare_seconds": prepare_seconds,
        "val_auc": float(scores["auc"]),
        "peak_rss_mb": _peak_rss_mb(),
        "cpus": sorted(os.sched_getaffinity(0)),
    }


def _cores(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench.lean",
        description="The simplest centralized Keras DeepFM on the reference "
        "layout's CSVs, for comparison with the split job.",
    )
    parser.add_argument(
        "--data", type=Path, required=True, help=f"folder of {ALICE_CSV}, {BOB_CSV}"
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--cores", type=_cores, help="CPUs to run on (comma separated); default all"
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cores:
        os.sched_setaffinity(0, args.cores)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = train(args.data, args.batch, args.epochs)
    line = json.dumps(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(line + "\n")
    print(line, flush=True)
    return 0


def run_lean(
    data: Path,
    batch: int,
    folder: Path,
    timeout: float,
    cores: list[int] | None = None,
) -> dict:
    """Runs the lean reference as its own process (log and result in
    ``folder``) and returns its result."""
    folder.mkdir(parents=True, exist_ok=True)
    result, log = folder / RESULT_FILE, folder / LOG_FILE
    result.unlink(missing_ok=True)
    command = [sys.executable, "-m", "splitrec.bench.lean", "--data", str(data)]
    command += ["--batch", str(batch), "--json", str(result)]
    if cores:
        command += ["--cores", ",".join(map(str, cores))]
    with log.open("w") as handle:
        try:
            process = subprocess.run(
                command,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"the lean reference did not finish in {timeout:.0f} s; see {log}"
            ) from None
    if process.returncode != 0 or not result.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(
            f"the lean reference failed ({process.returncode}); {log}:\n{tail}"
        )
    return json.loads(result.read_text())


if __name__ == "__main__":
    sys.exit(main())
