"""Attacks that learn from a few rows an attacker knows the answer for.

- **Feature inference** (the label party attacks a feature party): the label
  party receives a feature party's hidden tensor for every row it trains on
  and evaluates. Knowing that party's features for a small auxiliary set of
  rows, it trains a decoder from the received tensor to each categorical
  feature and applies it to the other rows. Scored as accuracy next to the
  majority-class accuracy of the same rows (what a guess without the tensor
  achieves). The decoder is a small softmax classifier (one hidden layer) whose
  weight decay the attacker chooses on a third of its known rows; when no
  decoder beats the majority class there, it guesses that class.
- **Model completion** (a feature party attacks the label; Fu et al. 2022,
  "Label Inference Attacks Against Vertical Federated Learning"): a feature
  party that knows the labels of a few rows trains a small head (a linear
  softmax classifier, strongly regularized) on the outputs of its own trained
  base, frozen, and predicts the labels of the rest. Scored as the AUC of
  those predictions against the true labels (0.5: nothing learnt).

The classifiers are trained in numpy with full batches and Adam, seeded: the
same inputs give the same scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splitrec.common.metrics import roc_auc

# The decoder: one hidden layer of this many ReLU units, trained this many
# full-batch Adam steps.
HIDDEN_UNITS = 64
TRAIN_STEPS = 400
LEARNING_RATE = 0.01
# The model-completion head's weight decay: strong, as few labelled rows ask
# (it leans toward the direction between the two classes' means).
COMPLETION_DECAY = 1.0


@dataclass(frozen=True)
class SoftmaxClassifier:
    """A trained classifier over standardized inputs; ``predict`` gives classes."""

    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    classes: np.ndarray

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Each row's probability of each of ``classes``."""
        logits = _forward(self.weights, self._standardized(inputs))[-1]
        return _softmax(logits)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(self.probabilities(inputs), axis=1)]

    def _standardized(self, inputs: np.ndarray) -> np.ndarray:
        return (np.asarray(inputs, np.float32) - self.mean) / self.scale


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _forward(weights: tuple[np.ndarray, ...], inputs: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer, the logits last (weights: w, b pairs)."""
    layers = [inputs]
    for index in range(0, len(weights), 2):
        out = layers[-1] @ weights[index] + weights[index + 1]
        if index + 2 < len(weights):
            out = np.maximum(out, 0.0)
        layers.append(out)
    return layers


def train_classifier(
    inputs: np.ndarray,
    targets: np.ndarray,
    seed: int,
    hidden_units: int = HIDDEN_UNITS,
    weight_decay: float = 1e-3,
    steps: int = TRAIN_STEPS,
) -> SoftmaxClassifier:
    """A softmax classifier of ``targets`` (any labels) from ``inputs``
    (``[rows, width]``): ``hidden_units`` ReLU units (0: a linear model),
    L2 ``weight_decay`` on the weights, ``steps`` full-batch Adam steps."""
    inputs = np.asarray(inputs, np.float32)
    classes, codes = np.unique(np.asarray(targets), return_inverse=True)
    mean = inputs.mean(axis=0)
    scale = inputs.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)
    x = (inputs - mean) / scale
    rng = np.random.default_rng(seed)
    sizes = [x.shape[1], *([hidden_units] if hidden_units else []), classes.size]
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        weights += [
            rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), (fan_in, fan_out)).astype(
                np.float32
            ),
            np.zeros(fan_out, np.float32),
        ]
    onehot = np.eye(classes.size, dtype=np.float32)[codes]
    moments = [(np.zeros_like(w), np.zeros_like(w)) for w in weights]
    beta1, beta2 = 0.9, 0.999
    for step in range(1, steps + 1):
        grads = _gradients(weights, x, onehot, weight_decay)
        for index, (grad, (m, v)) in enumerate(zip(grads, moments, strict=True)):
            m[...] = beta1 * m + (1 - beta1) * grad
            v[...] = beta2 * v + (1 - beta2) * grad**2
            m_hat = m / (1 - beta1**step)
            v_hat = v / (1 - beta2**step)
            weights[index] = weights[index] - LEARNING_RATE * m_hat / (
                np.sqrt(v_hat) + 1e-8
            )
    return SoftmaxClassifier(mean, scale, tuple(weights), classes)


def _gradients(
    weights: list[np.ndarray], x: np.ndarray, onehot: np.ndarray, decay: float
) -> list[np.ndarray]:
    """Gradients of the mean cross-entropy plus ``decay`` · ‖w‖² / 2."""
    layers = _forward(tuple(weights), x)
    delta = (_softmax(layers[-1]) - onehot) / x.shape[0]
    grads: list[np.ndarray] = [np.empty(0)] * len(weights)
    for index in range(len(weights) - 2, -1, -2):
        below = layers[index // 2]
        grads[index] = below.T @ delta + decay * weights[index]
        grads[index + 1] = delta.sum(axis=0)
        if index:
            delta = (delta @ weights[index].T) * (below > 0)
    return grads


@dataclass(frozen=True)
class ConstantGuess:
    """Guesses one class for every row (the attacker's fallback when no decoder
    beats it on the rows it knows)."""

    value: object

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.full(len(inputs), self.value, dtype=np.asarray(self.value).dtype)


# The decoders' weight decays the attacker chooses among.
DECAYS = (1e-3, 1e-2, 1e-1, 1.0)
# The share of its known rows the attacker keeps aside to choose by.
_CHECK_SHARE = 1 / 3


def fit_decoder(
    inputs: np.ndarray, targets: np.ndarray, seed: int
) -> SoftmaxClassifier | ConstantGuess:
    """The attacker's best guess of ``targets`` from ``inputs``, chosen on the
    known rows alone: a third of them set aside, the decoder of each of
    ``DECAYS`` and the majority class are scored on it, and the best is fit
    again on every known row (the majority class when it wins: an attacker who
    sees that the tensors do not help falls back to guessing)."""
    targets = np.asarray(targets)
    values, counts = np.unique(targets, return_counts=True)
    majority = ConstantGuess(values[np.argmax(counts)])
    rng = np.random.default_rng([seed, 1])
    check = np.zeros(targets.size, bool)
    check[rng.choice(targets.size, int(targets.size * _CHECK_SHARE), replace=False)] = (
        True
    )
    if values.size < 2 or check.all() or not check.any():
        return majority
    fit_values, fit_counts = np.unique(targets[~check], return_counts=True)
    best_accuracy = np.mean(targets[check] == fit_values[np.argmax(fit_counts)])
    best_decay = None
    for decay in DECAYS:
        trial = train_classifier(
            inputs[~check], targets[~check], seed, weight_decay=decay
        )
        accuracy = np.mean(trial.predict(inputs[check]) == targets[check])
        if accuracy > best_accuracy:
            best_accuracy, best_decay = accuracy, decay
    if best_decay is None:
        return majority
    return train_classifier(inputs, targets, seed, weight_decay=best_decay)


def majority_accuracy(values: np.ndarray) -> float:
    """Accuracy of always guessing the most common of ``values`` (the
    no-information baseline of a categorical feature)."""
    _, counts = np.unique(np.asarray(values), return_counts=True)
    return float(counts.max() / counts.sum()) if counts.size else float("nan")


@dataclass(frozen=True)
class FeatureInference:
    """One feature's attack: accuracy on the attacked rows and the
    majority-class accuracy of those rows.

    With groups (one entity per row, e.g. the user), the attacked rows are
    those of entities none of the known rows belongs to: the decoder has to
    generalize. The rows of known entities are scored apart
    (``linked_accuracy``): there the attacker may simply recognize the entity
    in the tensor and repeat what it knows."""

    accuracy: float
    baseline: float
    known_rows: int
    attacked_rows: int
    linked_accuracy: float = float("nan")
    linked_rows: int = 0

    @property
    def advantage(self) -> float:
        """How much better than a guess without the tensors."""
        return self.accuracy - self.baseline


def known_rows(rows: int, count: int, seed: int) -> np.ndarray:
    """A mask of ``count`` rows (of ``rows``) the attacker knows, drawn from
    ``seed``; at least one row is known and one attacked."""
    count = int(min(max(count, 1), rows - 1))
    mask = np.zeros(rows, bool)
    mask[np.random.default_rng(seed).choice(rows, count, replace=False)] = True
    return mask


def feature_inference(
    received: np.ndarray,
    features: dict[str, np.ndarray],
    known: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> dict[str, FeatureInference]:
    """The feature-inference attack on each of ``features`` (name → one value
    per row of ``received``): a decoder trained on ``known`` rows, scored on
    the others; with ``groups``, on the rows of the other groups (see
    ``FeatureInference``)."""
    mask = known_rows(received.shape[0], known, seed)
    linked = np.zeros_like(mask)
    if groups is not None:
        linked = np.isin(groups, np.unique(groups[mask])) & ~mask
    attacked = ~mask & ~linked
    if not attacked.any():
        raise ValueError("every row belongs to a group of the known rows")
    found = {}
    for offset, (name, values) in enumerate(features.items()):
        values = np.asarray(values)
        decoder = fit_decoder(received[mask], values[mask], seed + offset)
        guessed = decoder.predict(received[attacked | linked])
        hits = guessed == values[attacked | linked]
        on_linked = hits[linked[attacked | linked]]
        found[name] = FeatureInference(
            accuracy=float(np.mean(hits[attacked[attacked | linked]])),
            baseline=majority_accuracy(values[attacked]),
            known_rows=int(mask.sum()),
            attacked_rows=int(attacked.sum()),
            linked_accuracy=float(np.mean(on_linked)) if on_linked.size else np.nan,
            linked_rows=int(linked.sum()),
        )
    return found


def model_completion_auc(
    outputs: np.ndarray,
    labels: np.ndarray,
    known: int,
    seed: int,
    repeats: int = 10,
) -> float:
    """The model-completion attack: a linear softmax head trained on ``known``
    labelled rows of ``outputs`` (the attacker's own base outputs), scored by
    its AUC on every other row; the mean over ``repeats`` draws of the known
    rows (each with both classes), so that the figure does not hang on one draw
    of a few rows."""
    labels = np.asarray(labels).astype(np.int64).ravel()
    aucs = []
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        mask = _both_classes(labels, known, rng)
        head = train_classifier(
            outputs[mask],
            labels[mask],
            seed + repeat,
            hidden_units=0,
            weight_decay=COMPLETION_DECAY,
        )
        positive = int(np.flatnonzero(head.classes == 1)[0])
        scores = head.probabilities(outputs[~mask])[:, positive]
        aucs.append(roc_auc(labels[~mask], scores))
    return float(np.nanmean(aucs))


def _both_classes(
    labels: np.ndarray, known: int, rng: np.random.Generator
) -> np.ndarray:
    """A mask of ``known`` random rows holding both classes (one of each is
    swapped in when the draw missed a class)."""
    if np.unique(labels).size < 2:
        raise ValueError("model completion needs rows of both classes")
    known = int(min(max(known, 2), labels.size - 1))
    chosen = rng.choice(labels.size, known, replace=False)
    for value in (0, 1):
        if not np.any(labels[chosen] == value):
            candidates = np.flatnonzero(labels == value)
            other = chosen[labels[chosen] != value]
            chosen[np.flatnonzero(chosen == other[0])[0]] = rng.choice(candidates)
    mask = np.zeros(labels.size, bool)
    mask[chosen] = True
    return mask
