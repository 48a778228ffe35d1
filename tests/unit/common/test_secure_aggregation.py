"""Secure aggregation's pieces: fixed point, pairwise masks, signed key shares."""

from __future__ import annotations

import dataclasses
import os
import stat

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from splitrec.common.errors import DataError, NotAllowedError
from splitrec.privacy.secure_aggregation import fixed_point
from splitrec.privacy.secure_aggregation.key_shares import (
    KeyShare,
    check_share,
    job_secret,
    make_share,
    shares_digest,
)
from splitrec.privacy.secure_aggregation.masks import (
    MaskContext,
    Masker,
    mask,
    pair_key,
)
from splitrec.privacy.secure_aggregation.rules import secure_problem
from splitrec.security.certs import create_authority, issue, write_bundle
from splitrec.security.tls import TlsConfig, load_credentials

PARTIES = ("alice", "carol", "dave")


def _maskers(job: str = "j") -> dict[str, Masker]:
    secrets = {p: X25519PrivateKey.generate() for p in PARTIES}
    public = {p: s.public_key().public_bytes_raw() for p, s in secrets.items()}
    return {
        p: Masker(
            p,
            {
                q: pair_key(job, (p, secrets[p]), (q, public[q]))
                for q in PARTIES
                if q != p
            },
        )
        for p in PARTIES
    }


def test_fixed_point_sum_is_the_plain_sum_within_its_resolution():
    rng = np.random.default_rng(0)
    values = [rng.normal(0, 50, (64, 16)).astype(np.float32) for _ in PARTIES]
    encoded = [fixed_point.encode(v, len(values), "t") for v in values]
    total = fixed_point.decode(fixed_point.add(encoded))
    exact = np.sum([v.astype(np.float64) for v in values], axis=0)
    float_ulp = np.spacing(np.abs(exact).astype(np.float32))
    assert np.all(np.abs(total - exact) <= fixed_point.resolution(3) + float_ulp)


def test_fixed_point_refuses_values_out_of_range_and_non_finite():
    bound = fixed_point.limit(2)
    with pytest.raises(DataError, match="cannot be summed securely over 2"):
        fixed_point.encode(np.array([bound * 1.01]), 2, "hidden tensor")
    with pytest.raises(DataError, match="magnitude inf"):
        fixed_point.encode(np.array([1.0, np.nan]), 2, "hidden tensor")
    # Just inside the range the sum of two does not wrap around.
    edge = np.array([bound * 0.99, bound * 0.99])
    total = fixed_point.add([fixed_point.encode(edge, 2, "t")] * 2)
    assert np.allclose(fixed_point.decode(total), 2 * edge, rtol=1e-6)


def test_masks_cancel_in_the_sum_and_hide_each_tensor():
    rng = np.random.default_rng(1)
    maskers = _maskers()
    context = MaskContext(1, 0, 7)
    plain = {p: rng.normal(size=(128, 8)).astype(np.float32) for p in PARTIES}
    encoded = {p: fixed_point.encode(v, 3, "t") for p, v in plain.items()}
    masked = {p: maskers[p].apply(encoded[p], context) for p in PARTIES}
    total = fixed_point.decode(fixed_point.add(list(masked.values())))
    assert np.allclose(total, sum(plain.values()), atol=1e-6)
    for p in PARTIES:
        # Nothing of the plain tensor is left in what the party sends.
        assert not np.any(masked[p] == encoded[p])
        assert abs(np.corrcoef(masked[p].ravel() >> 11, encoded[p].ravel())[0, 1]) < 0.1


def test_a_replayed_step_draws_the_same_masks_and_other_steps_other_ones():
    key = bytes(range(32))
    one = MaskContext(phase=1, epoch=2, step=3)
    assert np.array_equal(mask(key, one, 100), mask(key, one, 100))
    others = [
        MaskContext(1, 2, 4),
        MaskContext(1, 3, 3),
        MaskContext(2, 2, 3),
        MaskContext(2, 2, 3, split=2),
        MaskContext(1, 2, 3, split=1),
    ]
    drawn = {bytes(mask(key, c, 4)) for c in [one, *others]}
    assert len(drawn) == 1 + len(others)
    assert not np.array_equal(mask(bytes(32), one, 4), mask(key, one, 4))


def test_pair_keys_agree_and_depend_on_the_job():
    a, b = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    pa, pb = (k.public_key().public_bytes_raw() for k in (a, b))
    assert pair_key("j", ("a", a), ("b", pb)) == pair_key("j", ("b", b), ("a", pa))
    assert pair_key("j", ("a", a), ("b", pb)) != pair_key("k", ("a", a), ("b", pb))


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    write_bundle(folder, ["alice", "carol", "bob"])

    def credentials(name):
        return load_credentials(
            TlsConfig(
                ca=folder / "ca.pem",
                cert=folder / f"{name}.pem",
                key=folder / f"{name}.key",
            )
        )

    return {name: credentials(name) for name in ("alice", "carol", "bob")}


def test_a_signed_share_is_accepted_and_every_forgery_refused(federation):
    public = X25519PrivateKey.generate().public_key().public_bytes_raw()
    share = make_share("job", "carol", public, federation["carol"])
    check_share(share, "job", "carol", "carol", federation["alice"], "alice")

    other = X25519PrivateKey.generate().public_key().public_bytes_raw()
    forgeries = {
        "substituted key": dataclasses.replace(share, public_key=other),
        "other job": dataclasses.replace(share, job_id="job2"),
        "signed by bob": make_share("job", "carol", other, federation["bob"]),
        "unsigned": KeyShare("job", "carol", other),
    }
    messages = {}
    for what, forged in forgeries.items():
        with pytest.raises(NotAllowedError) as refused:
            check_share(forged, "job", "carol", "carol", federation["alice"], "alice")
        messages[what] = str(refused.value)
    assert "valid signature" in messages["substituted key"]
    assert "is for job 'job2'" in messages["other job"]
    assert "not of 'carol'" in messages["signed by bob"]
    assert "is not signed" in messages["unsigned"]


def test_a_share_from_another_ca_is_refused(federation):
    stranger = create_authority("another CA")
    key, cert = issue(stranger, "carol")
    from splitrec.security.certs import cert_pem, key_pem
    from splitrec.security.tls import Credentials

    forged = Credentials(
        cert_pem(stranger.cert), cert_pem(cert), key_pem(key, None), "carol"
    )
    public = X25519PrivateKey.generate().public_key().public_bytes_raw()
    share = make_share("job", "carol", public, forged)
    with pytest.raises(NotAllowedError, match="CA did not issue"):
        check_share(share, "job", "carol", "carol", federation["alice"], "alice")


def test_shares_digest_ignores_order_and_sees_every_key():
    a = KeyShare("j", "alice", bytes(32))
    c = KeyShare("j", "carol", bytes([1]) * 32)
    assert shares_digest([a, c]) == shares_digest([c, a])
    assert shares_digest([a, c]) != shares_digest(
        [a, dataclasses.replace(c, public_key=bytes(32))]
    )


def test_the_job_key_survives_a_restart_until_the_job_changes(tmp_path):
    path = tmp_path / "job" / "secure-aggregation.key"
    first = job_secret(path, "binding-1").private_bytes_raw()
    assert job_secret(path, "binding-1").private_bytes_raw() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert job_secret(path, "binding-2").private_bytes_raw() != first
    path.write_text("garbage")
    assert len(job_secret(path, "binding-2").private_bytes_raw()) == 32


@pytest.mark.parametrize(
    ("aggregation", "parties", "compression", "says"),
    [
        ("concat", 2, "none", "concat fuse cannot take"),
        ("sum", 1, "none", "this job has 1"),
        ("average", 2, "int8", "compression (int8) of masked tensors is meaningless"),
    ],
)
def test_the_three_refusals(aggregation, parties, compression, says):
    assert says in secure_problem(True, aggregation, parties, compression)
    assert secure_problem(False, aggregation, parties, compression) is None
    assert secure_problem(True, "sum", 2, "none") is None
