"""Compressed hidden tensors and gradients over real gRPC: fewer bytes on the
wire, training still learns, and the label party refuses the wrong encoding."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from splitrec.config.job import load_job_config
from splitrec.coordinator.job import JobDriver
from splitrec.v1 import common_pb2, peer_pb2, peer_pb2_grpc
from tests.support import prepared_federation, running_parties

# Expected wire bytes per value against float32 forward + backward (8 bytes).
SHRINK = {
    "fp16": 2.0,
    "int8": 4.0,
    "topk": 8 / (0.3 * 8 + 0.3 * 4),
    "random": 8 / (0.3 * 4 * 2),
    "topk_int8": 8 / (0.3 * 5 + 0.3 * 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(SHRINK))
def test_compressed_job_trains_with_fewer_bytes(party_files, method):
    party_files.edit(
        "job",
        epochs=1,
        predict="none",
        compression={"method": method, "ratio": 0.3},
    )
    with running_parties(party_files):
        result = JobDriver(load_job_config(party_files.job)).run()
    traffic = json.loads((result.run_dir / "traffic.json").read_text())
    shrink = traffic["raw_payload_bytes_per_sample"] / traffic["peer_bytes_per_sample"]
    assert 0.85 * SHRINK[method] < shrink <= SHRINK[method] * 1.01, shrink
    assert result.records[-1].val_auc > 0.6


def test_label_party_refuses_the_wrong_encoding(party_files):
    party_files.edit("job", batch_size=64, compression={"method": "int8"})
    with prepared_federation(party_files) as (parties, config, _):
        address = f"127.0.0.1:{parties['bob'].port}"
        key = common_pb2.StepKey(job_id=config.job, phase=common_pb2.PHASE_TRAIN)
        hello = peer_pb2.PeerMessage(
            hello=peer_pb2.Hello(
                job_id=config.job, party="alice", phase=common_pb2.PHASE_TRAIN
            )
        )
        plain = peer_pb2.PeerMessage(forward=peer_pb2.Forward(key=key))
        plain.forward.hidden.dtype = 1
        plain.forward.hidden.shape.extend([64, 42])
        plain.forward.hidden.data = np.zeros((64, 42), np.float32).tobytes()
        short = peer_pb2.PeerMessage(forward=peer_pb2.Forward(key=key))
        short.forward.compressed.shape.extend([64, 42])
        short.forward.compressed.dtype = 6  # uint8
        short.forward.compressed.values = b"\x01" * 100
        errors = []
        with grpc.insecure_channel(address) as channel:
            stub = peer_pb2_grpc.PeerStub(channel)
            for message in (plain, short):
                with pytest.raises(grpc.RpcError) as error:
                    list(stub.Exchange(iter([hello, message]), timeout=10))
                errors.append(error.value)
    assert errors[0].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "this job compresses with int8" in errors[0].details()
    assert "int8 sends 2688 values (2688 bytes), got 100 bytes" in errors[1].details()
