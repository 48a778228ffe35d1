"""The noise mechanisms, in numpy: every draw comes from a generator seeded by
the job seed and the step, so a step replayed after a recovery draws the same
noise."""

from __future__ import annotations

import math

import numpy as np

# Streams of the job's random numbers; each mechanism draws from its own.
EMBEDDING_NOISE = 1
LABEL_FLIPS = 2
GRADIENT_NOISE = 3
MID_NOISE = 4


def generator(seed: int, stream: int, *key: int) -> np.random.Generator:
    """A generator for one stream and one step (or party, epoch, ...)."""
    return np.random.default_rng([seed % 2**63, stream, *key])


def add_gaussian(
    values: np.ndarray, std: float, rng: np.random.Generator
) -> np.ndarray:
    """``values`` plus independent N(0, std²) noise in every entry."""
    noise = rng.standard_normal(values.shape, dtype=np.float32) * np.float32(std)
    return values + noise


def flip_probability(epsilon: float) -> float:
    """Randomized response on a bit: keep it with probability e^ε / (1 + e^ε)."""
    return 1.0 / (1.0 + math.exp(epsilon))


def randomized_response(
    labels: np.ndarray, epsilon: float, rng: np.random.Generator
) -> np.ndarray:
    """Binary labels, each flipped independently with ``flip_probability(ε)``."""
    flips = rng.random(labels.shape) < flip_probability(epsilon)
    return np.where(flips, 1 - labels, labels).astype(labels.dtype)


def _row_norms(gradient: np.ndarray) -> np.ndarray:
    return np.linalg.norm(gradient.astype(np.float64), axis=1)


def max_norm_noise(gradient: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The max-norm heuristic of Li et al.: row j gets isotropic noise of variance
    (‖g_max‖² − ‖g_j‖²) / d per entry, so every row's expected squared norm is the
    batch's largest and the norm no longer tells the classes apart."""
    if gradient.size == 0:
        return gradient
    norms = _row_norms(gradient)
    width = gradient.shape[1]
    std = np.sqrt(np.maximum(norms.max() ** 2 - norms**2, 0.0) / width)
    noise = rng.standard_normal(gradient.shape) * std[:, None]
    return (gradient + noise).astype(gradient.dtype)


def iso_noise(
    gradient: np.ndarray, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Isotropic Gaussian noise with standard deviation ``scale · ‖g_max‖ / √d``
    in every entry (expected noise norm ``scale`` times the largest row norm)."""
    if gradient.size == 0:
        return gradient
    width = gradient.shape[1]
    std = scale * _row_norms(gradient).max() / math.sqrt(width)
    noise = rng.standard_normal(gradient.shape) * std
    return (gradient + noise).astype(gradient.dtype)


def leading_direction(values: np.ndarray) -> np.ndarray:
    """The unit vector the rows of ``values`` lie along most (first right
    singular vector); the first axis when there is nothing to go by."""
    if values.shape[0] == 0 or not np.any(values):
        axis = np.zeros(values.shape[1])
        axis[0] = 1.0
        return axis
    return np.linalg.svd(values, full_matrices=False)[2][0]


def class_direction(gradient: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The unit vector from the negatives' mean gradient to the positives' (the
    direction the label shows in); the leading direction when the batch holds
    one class only or the means coincide."""
    positive = np.asarray(labels).ravel() > 0.5
    values = gradient.astype(np.float64)
    if positive.any() and not positive.all():
        delta = values[positive].mean(axis=0) - values[~positive].mean(axis=0)
        length = np.linalg.norm(delta)
        if length > 0:
            return delta / length
    return leading_direction(values)


def directional_noise(
    gradient: np.ndarray, labels: np.ndarray, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian noise along the class direction only (the idea behind Marvell in
    Li et al.: spend the noise where the label shows). Each row's projection on
    that direction gets noise of standard deviation ``scale`` times the batch's
    root-mean-square projection; the other directions are left alone."""
    if gradient.size == 0:
        return gradient
    direction = class_direction(gradient, labels)
    projection = gradient.astype(np.float64) @ direction
    std = scale * math.sqrt(float(np.mean(projection**2)))
    noise = rng.standard_normal(gradient.shape[0]) * std
    return (gradient + noise[:, None] * direction).astype(gradient.dtype)


def defend(
    gradient: np.ndarray,
    labels: np.ndarray,
    method: str,
    scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The gradient a label party returns under ``method``; ``labels`` are the
    batch's training labels."""
    if method == "max_norm":
        return max_norm_noise(gradient, rng)
    if method == "iso":
        return iso_noise(gradient, scale, rng)
    if method == "directional":
        return directional_noise(gradient, labels, scale, rng)
    return gradient
