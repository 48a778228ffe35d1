"""ε of embedding DP, from the RDP accountant of ``dp_accounting``.

Each training step releases one batch of clipped rows with Gaussian noise of
multiplier σ. Two figures are reported:

- ``epsilon``: the DP-SGD convention (a Poisson-sampled Gaussian mechanism with
  rate batch / rows, composed over the steps taken), comparable with what other
  split-learning and DP-SGD tools print;
- ``epsilon_per_row``: no amplification by sampling. The label party knows which
  rows each batch holds, so against it a row's protection is that of the
  Gaussian mechanism composed once per epoch in which the row was sent.

Accounted per user (``per_user``), a third: ``epsilon_per_user``. A user with
``k`` training rows is released ``k`` times per epoch, each row clipped and
noised on its own (rows of one batch included: the batch's release then has
sensitivity √k·C, which is the same Gaussian composed ``k`` times), so the
user's protection is that of the Gaussian mechanism composed ``k`` times per
epoch, without amplification. The figure is that of the user with the most
training rows: every other user's is at most that.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from splitrec.config.privacy import PrivacySettings, PrivacySpent

# RDP orders searched for the best conversion to (ε, δ).
ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))


def _accountant(noise_multiplier: float, rate: float, steps: int) -> object:
    import dp_accounting  # imported on first use: it loads scipy

    accountant = dp_accounting.rdp.RdpAccountant(list(ORDERS))
    event = dp_accounting.GaussianDpEvent(noise_multiplier)
    if rate < 1.0:
        event = dp_accounting.PoissonSampledDpEvent(rate, event)
    accountant.compose(event, steps)
    return accountant


@functools.lru_cache(maxsize=256)
def sampled_gaussian_epsilon(
    noise_multiplier: float, rate: float, steps: int, delta: float
) -> float:
    """ε after ``steps`` of a Gaussian mechanism sampled at ``rate``."""
    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    return float(_accountant(noise_multiplier, rate, steps).get_epsilon(delta))


def classic_epsilon(
    noise_multiplier: float, rate: float, steps: int, delta: float
) -> float:
    """The same RDP curve converted with ε = min over α of RDP(α) + log(1/δ)/(α−1),
    the conversion of Abadi et al. and Mironov: looser, and what earlier tools and
    papers printed."""
    if noise_multiplier <= 0:
        return math.inf
    rdp = np.asarray(_accountant(noise_multiplier, rate, steps).rdp)
    orders = np.asarray(ORDERS)
    return float(np.min(rdp + math.log(1 / delta) / (orders - 1)))


def embedding_privacy(
    privacy: PrivacySettings,
    batch_size: int,
    rows: int,
    steps: int,
    steps_per_epoch: int,
    user_rows: int = 0,
) -> PrivacySpent | None:
    """ε spent by a feature party after ``steps`` training steps of ``rows``
    training rows (None when embedding DP is off); per user too when the
    settings ask for it, ``user_rows`` being the most training rows about one
    user. Answers are cached: the status RPC asks again for the same step."""
    if not privacy.embedding_dp:
        return None
    sigma, delta = privacy.noise_multiplier, privacy.delta
    rate = min(1.0, batch_size / rows) if rows else 1.0
    epochs = math.ceil(steps / steps_per_epoch) if steps_per_epoch else 0
    per_user = None
    if privacy.dp_per_user:
        per_user = sampled_gaussian_epsilon(sigma, 1.0, epochs * user_rows, delta)
    return PrivacySpent(
        epsilon=sampled_gaussian_epsilon(sigma, rate, steps, delta),
        epsilon_per_row=sampled_gaussian_epsilon(sigma, 1.0, epochs, delta),
        delta=delta,
        epsilon_per_user=per_user,
    )
