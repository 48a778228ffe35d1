"""The parties' side of secure aggregation: the relayed key shares a feature
party accepts, and the label party's board that waits for all of them."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from splitrec.common.errors import NotAllowedError, PeerError
from splitrec.config.jobspec import JobParty, JobSpec
from splitrec.config.party import PartyRole
from splitrec.party_server.secure_sums import PairwiseMasking, ShareBoard
from splitrec.privacy.secure_aggregation import fixed_point
from splitrec.privacy.secure_aggregation.masks import MaskContext
from splitrec.security.certs import write_bundle
from splitrec.security.tls import TlsConfig, load_credentials
from tests.outputs import job_spec, output_of

FEATURES = ("alice", "carol", "dave")


def _spec() -> JobSpec:
    parties = tuple(
        JobParty(n, PartyRole.FEATURE, output_of("dnn", 4)) for n in FEATURES
    ) + (JobParty("bob", PartyRole.LABEL, output_of("dnn", 4)),)
    return job_spec(
        job_id="j", parties=parties, aggregation="sum", secure_aggregation=True
    )


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    write_bundle(folder, [*FEATURES, "bob"])
    return {
        n: load_credentials(
            TlsConfig(
                ca=folder / "ca.pem", cert=folder / f"{n}.pem", key=folder / f"{n}.key"
            )
        )
        for n in (*FEATURES, "bob")
    }


def _maskings(tmp_path: Path, credentials) -> dict[str, PairwiseMasking]:
    data = SimpleNamespace(content_digest="c", id_digest="i")
    return {
        n: PairwiseMasking(_spec(), n, data, tmp_path / n / "key", credentials[n])
        for n in FEATURES
    }


def test_relayed_shares_give_masks_that_cancel(tmp_path, credentials):
    maskings = _maskings(tmp_path, credentials)
    shares = [m.share for m in maskings.values()]
    for masking in maskings.values():
        masking.accept(shares)
        masking.accept(list(reversed(shares)))  # a later stream, same shares
    rng = np.random.default_rng(3)
    plain = {n: rng.normal(size=(8, 4)) for n in FEATURES}
    context = MaskContext(1, 0, 2)
    sent = [maskings[n].mask(plain[n], context, "t") for n in FEATURES]
    assert len({keys for _, keys in sent}) == 1
    total = fixed_point.decode(fixed_point.add([values for values, _ in sent]))
    assert np.allclose(total, sum(plain.values()), atol=1e-6)


def test_a_label_party_that_substitutes_or_drops_a_share_is_refused(
    tmp_path, credentials
):
    maskings = _maskings(tmp_path, credentials)
    alice, carol, dave = (maskings[n].share for n in FEATURES)
    own_key = X25519PrivateKey.generate().public_key().public_bytes_raw()
    cases = {
        "substituted": [alice, dataclasses.replace(carol, public_key=own_key), dave],
        "dropped": [alice, carol],
        "own replaced": [dataclasses.replace(alice, public_key=own_key), carol, dave],
    }
    said = {}
    for what, relayed in cases.items():
        with pytest.raises(NotAllowedError) as refused:
            maskings["alice"].accept(relayed)
        said[what] = str(refused.value)
    assert (
        "key share of party 'carol' does not carry a valid signature"
        in said["substituted"]
    )
    assert (
        "relayed key shares of ['alice', 'carol'], but the job's feature"
        in said["dropped"]
    )
    assert "that alice did not send" in said["own replaced"]
    # Once agreed, other shares later in the job are refused too.
    maskings["alice"].accept([alice, carol, dave])
    other = _maskings(tmp_path / "other", credentials)["carol"].share
    with pytest.raises(NotAllowedError, match="other key shares than before"):
        maskings["alice"].accept([alice, other, dave])


def test_the_board_relays_every_share_once_all_are_in(tmp_path, credentials):
    maskings = _maskings(tmp_path, credentials)
    board = ShareBoard(_spec(), "bob", credentials["bob"])
    results = {}

    def offer(name):
        results[name] = board.offer(maskings[name].share, name, timeout=10)

    threads = [threading.Thread(target=offer, args=(n,)) for n in FEATURES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all([s.party for s in r] == list(FEATURES) for r in results.values())
    assert board.digest
    # A share in another party's name is refused at the board already.
    with pytest.raises(NotAllowedError, match="is for job 'j' party 'alice'"):
        board.offer(maskings["alice"].share, "carol", timeout=1)


def test_the_board_names_who_never_sent_a_share(tmp_path, credentials):
    board = ShareBoard(_spec(), "bob", credentials["bob"])
    share = _maskings(tmp_path, credentials)["alice"].share
    with pytest.raises(PeerError, match=r"no key share from \['carol', 'dave'\]"):
        board.offer(share, "alice", timeout=0.3)
