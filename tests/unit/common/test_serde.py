"""Unit tests of splitrec.wire.serde: the tensor codec and the message conversions."""

from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np
import pytest

from splitrec.common.errors import InvalidMessageError
from splitrec.common.metrics import Metrics
from splitrec.common.traffic import Traffic
from splitrec.config.jobspec import (
    ModelVersion,
    OutputSpec,
    PartExport,
    PartyDescription,
    PartyStatusView,
    PeerState,
)
from splitrec.config.party import PartyRole
from splitrec.config.privacy import PrivacySettings
from splitrec.v1 import common_pb2, control_pb2, peer_pb2, tensor_pb2
from splitrec.wire import serde
from tests.outputs import deepfm_output, job_spec

# (numpy dtype, wire code, little-endian struct format of one element)
SUPPORTED = [
    ("float32", tensor_pb2.DTYPE_FLOAT32, "<f"),
    ("float16", tensor_pb2.DTYPE_FLOAT16, "<e"),
    ("float64", tensor_pb2.DTYPE_FLOAT64, "<d"),
    ("int32", tensor_pb2.DTYPE_INT32, "<i"),
    ("int64", tensor_pb2.DTYPE_INT64, "<q"),
    ("uint8", tensor_pb2.DTYPE_UINT8, "<B"),
]


def _raw(dtype_code: int, shape: list[int], data: bytes) -> tensor_pb2.Tensor:
    return tensor_pb2.Tensor(dtype=dtype_code, shape=shape, data=data)


def _float32s(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def _message_of(call) -> str:
    with pytest.raises(InvalidMessageError) as caught:
        call()
    return str(caught.value)


# --- tensors: round trips -----------------------------------------------------


@pytest.mark.parametrize(("dtype", "code", "fmt"), SUPPORTED)
def test_tensor_round_trip_keeps_values_dtype_and_shape(dtype, code, fmt):
    # Prepare
    array = np.array([[1, 2, 3], [4, 5, 250]], dtype=dtype)

    # Execute
    message = serde.tensor_to_proto(array)
    decoded = serde.tensor_from_proto(message)

    # Assert
    assert message.dtype == code
    assert list(message.shape) == [2, 3]
    assert message.data == struct.pack("<6" + fmt[1], 1, 2, 3, 4, 5, 250)
    assert decoded.dtype == np.dtype(dtype)
    assert decoded.shape == (2, 3)
    np.testing.assert_array_equal(decoded, array)


def test_zero_dimensional_tensor_round_trips_as_a_scalar_array():
    message = serde.tensor_to_proto(np.float32(2.5))

    decoded = serde.tensor_from_proto(message)

    assert list(message.shape) == []
    assert message.data == _float32s(2.5)
    assert decoded.shape == ()
    assert decoded.item() == 2.5


@pytest.mark.parametrize("shape", [(0,), (0, 3), (4, 0)])
def test_empty_tensor_round_trips_with_no_bytes(shape):
    message = serde.tensor_to_proto(np.zeros(shape, dtype=np.float32))

    decoded = serde.tensor_from_proto(message)

    assert message.data == b""
    assert tuple(message.shape) == shape
    assert decoded.shape == shape
    assert decoded.dtype == np.float32


def test_non_contiguous_array_is_sent_in_row_major_order():
    # Prepare: the transpose of [[1, 2], [3, 4]] is [[1, 3], [2, 4]].
    array = np.array([[1, 2], [3, 4]], dtype=np.int32).T

    message = serde.tensor_to_proto(array)

    assert list(message.shape) == [2, 2]
    assert message.data == struct.pack("<4i", 1, 3, 2, 4)
    np.testing.assert_array_equal(serde.tensor_from_proto(message), [[1, 3], [2, 4]])


def test_big_endian_array_is_encoded_little_endian():
    # Prepare: 1.0 as float32 is 0x3F800000; 258 as int64 is 0x0102.
    floats = np.array([1.0, -2.0], dtype=">f4")
    ints = np.array([258], dtype=">i8")

    # Execute
    float_message = serde.tensor_to_proto(floats)
    int_message = serde.tensor_to_proto(ints)

    # Assert
    assert float_message.dtype == tensor_pb2.DTYPE_FLOAT32
    assert float_message.data == bytes.fromhex("0000803f000000c0")
    assert int_message.dtype == tensor_pb2.DTYPE_INT64
    assert int_message.data == bytes.fromhex("0201000000000000")
    np.testing.assert_array_equal(serde.tensor_from_proto(float_message), [1.0, -2.0])
    np.testing.assert_array_equal(serde.tensor_from_proto(int_message), [258])


def test_decoded_tensor_is_a_read_only_view_over_the_message_bytes():
    message = _raw(tensor_pb2.DTYPE_FLOAT32, [2], _float32s(1.0, 2.0))

    decoded = serde.tensor_from_proto(message)

    assert not decoded.flags.writeable
    assert not decoded.flags.owndata
    base = decoded
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, bytes)
    assert base == message.data
    with pytest.raises(ValueError):
        decoded[0] = 5.0


@pytest.mark.parametrize("dtype", ["bool", "int16", "complex64", "uint16"])
def test_encoding_an_unsupported_dtype_is_refused(dtype):
    message = _message_of(lambda: serde.tensor_to_proto(np.zeros(2, dtype=dtype)))

    assert f"dtype {dtype} cannot be sent" in message


# --- tensors: refusals --------------------------------------------------------


def test_wrong_byte_length_is_refused_with_both_sizes():
    # Prepare: shape [2, 2] of float32 needs 16 bytes; 12 are sent.
    message = _raw(tensor_pb2.DTYPE_FLOAT32, [2, 2], _float32s(1, 2, 3))

    text = _message_of(lambda: serde.tensor_from_proto(message, what="hidden"))

    assert text == "hidden: shape (2, 2) of float32 needs 16 bytes, got 12"


def test_zero_dimensional_shape_with_no_bytes_is_refused():
    message = _raw(tensor_pb2.DTYPE_INT32, [], b"")

    text = _message_of(lambda: serde.tensor_from_proto(message))

    assert "needs 4 bytes, got 0" in text


@pytest.mark.parametrize(
    ("code", "shown"), [(0, "DTYPE_UNSPECIFIED"), (99, "99")], ids=["zero", "99"]
)
def test_unknown_dtype_code_is_refused(code, shown):
    message = _raw(code, [1], b"\x00")

    text = _message_of(lambda: serde.tensor_from_proto(message))

    assert text == f"tensor: unsupported dtype {shown}"


def test_negative_dimension_is_refused():
    message = _raw(tensor_pb2.DTYPE_FLOAT32, [2, -1], b"")

    text = _message_of(lambda: serde.tensor_from_proto(message))

    assert text == "tensor: negative dimension in shape (2, -1)"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(("code", "fmt"), [(1, "<3f"), (2, "<3e"), (3, "<3d")])
def test_non_finite_floats_are_refused(bad, code, fmt):
    message = _raw(code, [3], struct.pack(fmt, 1.0, bad, 2.0))

    text = _message_of(lambda: serde.tensor_from_proto(message, what="gradient"))

    assert text == "gradient: holds NaN or infinite values"


def test_forward_and_backward_messages_built_in_place_equal_nested_ones():
    key = common_pb2.StepKey(job_id="job", phase=common_pb2.PHASE_TRAIN, step=3)
    hidden = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    gradient = -hidden[:, ::-1]  # not contiguous: encoded in row order
    forward = serde.forward_to_proto(key, hidden)
    backward = serde.backward_to_proto(key, gradient)

    nested_forward = peer_pb2.PeerMessage(
        forward=peer_pb2.Forward(key=key, hidden=serde.tensor_to_proto(hidden))
    )
    nested_backward = peer_pb2.PeerMessage(
        backward=peer_pb2.Backward(key=key, gradient=serde.tensor_to_proto(gradient))
    )
    assert forward == nested_forward and backward == nested_backward
    assert forward.SerializeToString() == nested_forward.SerializeToString()
    np.testing.assert_array_equal(
        serde.tensor_from_proto(backward.backward.gradient, shape=(3, 4)), gradient
    )


def test_a_tensor_written_into_a_field_replaces_what_it_held():
    message = peer_pb2.PeerMessage()
    serde.write_tensor(message.forward.hidden, np.zeros((2, 5), np.float64))
    serde.write_tensor(message.forward.hidden, np.ones(3, np.int32))
    decoded = serde.tensor_from_proto(message.forward.hidden)
    assert decoded.dtype == np.dtype("<i4")
    np.testing.assert_array_equal(decoded, [1, 1, 1])


def test_integer_tensor_is_not_checked_for_finiteness():
    # Prepare: the bytes of a float32 NaN, read as int32, are a plain number.
    nan_bits = _float32s(math.nan)
    message = _raw(tensor_pb2.DTYPE_INT32, [1], nan_bits)

    decoded = serde.tensor_from_proto(message)

    assert decoded[0] == struct.unpack("<i", nan_bits)[0]


@pytest.mark.parametrize(
    "expected",
    [(2, 3), (None, 3), (2, None), (None, None)],
    ids=["exact", "any-rows", "any-cols", "any-both"],
)
def test_shape_matching_accepts_exact_sizes_and_none_wildcards(expected):
    message = serde.tensor_to_proto(np.ones((2, 3), dtype=np.float32))

    decoded = serde.tensor_from_proto(message, shape=expected)

    assert decoded.shape == (2, 3)


@pytest.mark.parametrize(
    ("expected", "shown"),
    [
        ((2, 4), "(2, 4)"),
        ((None, 4), "('?', 4)"),
        ((3, None), "(3, '?')"),
        ((None,), "('?',)"),
        ((None, None, None), "('?', '?', '?')"),
    ],
)
def test_shape_mismatch_is_refused_with_expected_and_actual(expected, shown):
    message = serde.tensor_to_proto(np.ones((2, 3), dtype=np.float32))

    text = _message_of(
        lambda: serde.tensor_from_proto(message, shape=expected, what="hidden")
    )

    assert text == f"hidden: expected shape {shown}, got (2, 3)"


def test_tensor_over_the_byte_limit_is_refused():
    # Prepare: 3 float32 values are 12 bytes.
    message = serde.tensor_to_proto(np.ones(3, dtype=np.float32))

    text = _message_of(lambda: serde.tensor_from_proto(message, max_bytes=8))

    assert text == "tensor: 12 bytes exceeds the limit of 8"


def test_tensor_exactly_at_the_byte_limit_is_accepted():
    message = serde.tensor_to_proto(np.ones(3, dtype=np.float32))

    decoded = serde.tensor_from_proto(message, max_bytes=12)

    np.testing.assert_array_equal(decoded, [1.0, 1.0, 1.0])


def test_default_byte_limit_is_64_mebibytes():
    assert serde.MAX_TENSOR_BYTES == 64 * 1024 * 1024


# --- job spec, output spec, description, metrics ------------------------------


_job_spec = job_spec


def test_job_spec_round_trips_exactly():
    spec = _job_spec()

    message = serde.job_spec_to_proto(spec)
    back = serde.job_spec_from_proto(message)

    assert back == spec
    assert message.optimizer.name == "adam"
    assert message.parties[0].role == common_pb2.ROLE_FEATURE
    assert message.parties[1].role == common_pb2.ROLE_LABEL
    assert message.parties[1].output.parts[0].size == 16
    assert back.feature_parties == ("alice",)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"job_id": ""}, "job spec job_id: '' is not a safe name"),
        ({"job_id": "../../etc"}, "job spec job_id: '../../etc' is not a safe name"),
        ({"job_id": "/tmp/x"}, "job spec job_id: '/tmp/x' is not a safe name"),
        ({"job_id": "a/b"}, "is not a safe name"),
        ({"job_id": ".."}, "is not a safe name"),
        ({"job_id": "x" * 65}, "is not a safe name"),
        ({"label_party": "../bob"}, "job spec label_party: '../bob' is not a safe"),
        ({"batch_size": 0}, "job spec batch_size: 0 is outside the allowed range"),
        ({"epochs": 0}, "job spec epochs: 0 is outside the allowed range"),
        ({"batch_size": -4}, "job spec batch_size: -4 is outside"),
        ({"seed": -1}, "job spec seed: -1 is outside the allowed range"),
        ({"validation_fraction": 0.0}, "job spec validation_fraction: 0 is outside"),
        ({"validation_fraction": 1.0}, "job spec validation_fraction: 1 is outside"),
        ({"learning_rate": 0.0}, "job spec optimizer.learning_rate: 0 is outside"),
        ({"learning_rate": -0.1}, "optimizer.learning_rate: -0.1 is outside"),
        ({"learning_rate": float("nan")}, "must be a finite number"),
        ({"learning_rate": float("inf")}, "must be a finite number"),
        ({"optimizer": "rmsprop"}, "job spec optimizer 'rmsprop': use one of"),
        ({"compression": "zip"}, "job spec compression 'zip': use one of"),
        ({"pipeline_size": 65}, "job spec strategy.pipeline_size: 65 is outside"),
        ({"aggregation": "max"}, "job spec aggregation 'max': use one of"),
    ],
)
def test_job_spec_from_proto_refuses_bad_values(change, needle):
    message = serde.job_spec_to_proto(_job_spec(**change))

    text = _message_of(lambda: serde.job_spec_from_proto(message))

    assert needle in text


def test_a_warm_start_travels_with_its_export_record():
    init = ModelVersion("job-a", "epoch-2", 2, "e1", {"alice": "fa", "bob": "fb"})
    spec = _job_spec(epochs=4, init_from=init)
    assert serde.job_spec_from_proto(serde.job_spec_to_proto(spec)) == spec
    message = serde.job_spec_to_proto(_job_spec(epochs=4, init_from=init))
    message.init_from.export_id = "../x"
    text = _message_of(lambda: serde.job_spec_from_proto(message))
    assert "init_from.export_id: '../x' is not a safe name" in text


def test_a_part_export_round_trips_and_one_without_its_file_list_is_refused():
    part = PartExport("m", "f", "e1")
    reply = serde.part_export_to_proto("v1", part)
    assert serde.part_export_from_proto(reply) == part
    reply.files_digest = ""
    with pytest.raises(InvalidMessageError, match="lacks the part's file-list"):
        serde.part_export_from_proto(reply)


def test_a_scoring_job_is_named_by_what_it_scores_and_a_training_job_never_so():
    scoring = _job_spec(
        job_id="job-1+epoch-2+new",
        init_from=ModelVersion("job-1", "epoch-2", 2),
        dataset="new",
    )
    assert serde.job_spec_from_proto(serde.job_spec_to_proto(scoring)) == scoring

    for spec, needle in (
        (
            dataclasses.replace(scoring, job_id="job-1.epoch-2.new"),
            "job spec job_id: 'job-1.epoch-2.new' is not the name of this scoring "
            "run: 'job-1+epoch-2+new'",
        ),
        (
            dataclasses.replace(scoring, job_id="job-1+epoch-1+new"),
            "is not the name of this scoring run",
        ),
        (
            dataclasses.replace(scoring, dataset=""),
            "'+' marks the name of a scoring run",
        ),
    ):
        message = serde.job_spec_to_proto(spec)
        assert needle in _message_of(lambda m=message: serde.job_spec_from_proto(m))


def test_privacy_settings_round_trip_in_the_job_spec():
    privacy = PrivacySettings(
        clip_norm=1.5,
        noise_multiplier=0.7,
        delta=1e-6,
        label_epsilon=2.0,
        gradient_defense="max_norm",
        defense_scale=3.0,
        leakage_probe=True,
        dp_releases="all",
    )
    spec = _job_spec(privacy=privacy)
    assert serde.job_spec_from_proto(serde.job_spec_to_proto(spec)) == spec


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("gradient_defense", "marvell", "gradient_defense.method: use one of"),
        ("noise_multiplier", -1.0, "noise_multiplier: must be 0 or more"),
        ("label_epsilon", float("nan"), "label_dp.epsilon: must be a finite number"),
        ("clip_norm", float("inf"), "clip_norm: must be a finite number"),
        ("embedding_dp_releases", "some", "embedding_dp.releases: use one of"),
    ],
)
def test_job_spec_from_proto_refuses_bad_privacy(field, value, needle):
    message = serde.job_spec_to_proto(_job_spec())
    setattr(message.privacy, field, value)

    text = _message_of(lambda: serde.job_spec_from_proto(message))

    assert needle in text


def test_job_spec_from_proto_refuses_unknown_role():
    message = serde.job_spec_to_proto(_job_spec())
    message.parties[0].role = common_pb2.ROLE_UNSPECIFIED

    text = _message_of(lambda: serde.job_spec_from_proto(message))

    assert text == "unknown party role 0"


def test_job_spec_from_proto_refuses_a_feature_party_without_output_parts():
    message = serde.job_spec_to_proto(_job_spec())
    del message.parties[0].output.parts[:]
    # Claiming the label role does not make an empty output acceptable.
    message.parties[0].role = common_pb2.ROLE_LABEL

    text = _message_of(lambda: serde.job_spec_from_proto(message))

    assert "output spec of family 'deepfm' needs 1 to 64 parts, got 0" in text


def test_the_label_party_may_output_nothing():
    message = serde.job_spec_to_proto(_job_spec())
    del message.parties[1].output.parts[:]

    spec = serde.job_spec_from_proto(message)

    assert spec.party("bob").output.parts == ()
    described = dataclasses.replace(
        _description(), role=PartyRole.LABEL, output=OutputSpec("dnn", ())
    )
    back = serde.description_from_proto(serde.description_to_proto(described))
    assert back.output.width == 0


def test_output_spec_round_trips_and_width_adds_the_parts():
    spec = dataclasses.replace(deepfm_output(32, 8), structure="ab" * 16)

    back = serde.output_spec_from_proto(serde.output_spec_to_proto(spec))

    assert back == spec
    assert back.width == 42
    assert back.size("embedding_sum") == 8 and back.size("other") == 0


@pytest.mark.parametrize(
    ("parts", "needle"),
    [
        ([("deep", 0)], "part 'deep' of size 0"),
        ([("deep", -1)], "part 'deep' of size -1"),
        ([("deep", 4), ("deep", 4)], "part 'deep' of size 4 (each part needs a"),
        ([("../x", 4)], "part '../x' of size 4"),
        ([("deep", 1 << 17)], "too large: width 131072 (at most 65536)"),
    ],
)
def test_output_spec_from_proto_refuses_bad_parts(parts, needle):
    message = common_pb2.OutputSpec(
        family="dnn",
        parts=[common_pb2.OutputPart(name=n, size=size) for n, size in parts],
    )

    text = _message_of(lambda: serde.output_spec_from_proto(message))

    assert needle in text


def test_output_spec_from_proto_refuses_an_unsafe_family_name():
    message = common_pb2.OutputSpec(
        family="/etc", parts=[common_pb2.OutputPart(name="deep", size=4)]
    )

    text = _message_of(lambda: serde.output_spec_from_proto(message))

    assert text.startswith("output spec: model family: ")


def _description() -> PartyDescription:
    return PartyDescription(
        party="alice",
        role=PartyRole.FEATURE,
        protocol_version="splitrec.v1",
        num_rows=1000,
        output=deepfm_output(32, 8),
        features=("UserID", "Gender"),
        peers=("bob",),
    )


@pytest.mark.parametrize("aggregation", ["sum", "average"])
def test_the_fuse_aggregation_travels_in_the_job_spec_and_description(aggregation):
    spec = _job_spec(aggregation=aggregation)
    described = dataclasses.replace(_description(), aggregation=aggregation)

    assert serde.job_spec_from_proto(serde.job_spec_to_proto(spec)) == spec
    back = serde.description_from_proto(serde.description_to_proto(described))
    assert back.aggregation == aggregation
    # A coordinator that says nothing of it means side by side.
    message = serde.job_spec_to_proto(spec)
    message.ClearField("aggregation")
    assert serde.job_spec_from_proto(message).aggregation == "concat"


def test_description_round_trips_exactly():
    description = _description()

    message = serde.description_to_proto(description)
    back = serde.description_from_proto(message)

    assert back == description
    assert list(message.features) == ["UserID", "Gender"]
    assert message.role == common_pb2.ROLE_FEATURE


def test_metrics_round_trip_exactly():
    metrics = Metrics(count=7, loss=0.25, auc=0.75, precision=0.5, recall=1.0 / 3)

    back = serde.metrics_from_proto(serde.metrics_to_proto(metrics))

    assert back == metrics


def test_optional_metrics_round_trip_with_and_without_metrics():
    metrics = Metrics(count=3, loss=0.5, auc=1.0, precision=1.0, recall=0.5)

    with_metrics = control_pb2.EvaluateReply(
        rows=3, **serde.optional_metrics_to_proto(metrics)
    )
    without = control_pb2.EvaluateReply(rows=3, **serde.optional_metrics_to_proto(None))

    assert with_metrics.has_metrics
    assert serde.optional_metrics_from_proto(with_metrics) == metrics
    assert not without.has_metrics
    assert serde.optional_metrics_from_proto(without) is None


# --- splits and roles ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("train", common_pb2.SPLIT_TRAIN),
        ("validation", common_pb2.SPLIT_VALIDATION),
        ("all", common_pb2.SPLIT_ALL),
    ],
)
def test_split_names_convert_both_ways(name, code):
    assert serde.split_to_proto(name) == code
    assert serde.split_from_proto(code) == name


@pytest.mark.parametrize("code", [common_pb2.SPLIT_UNSPECIFIED, 42])
def test_unknown_split_code_is_refused(code):
    text = _message_of(lambda: serde.split_from_proto(code))

    assert text == f"unknown split {code}; use TRAIN, VALIDATION or ALL"


@pytest.mark.parametrize(
    ("role", "code"),
    [(PartyRole.FEATURE, common_pb2.ROLE_FEATURE), (PartyRole.LABEL, 2)],
)
def test_roles_convert_both_ways(role, code):
    assert serde.role_to_proto(role) == code
    assert serde.role_from_proto(code) is role


@pytest.mark.parametrize("code", [0, 3])
def test_unknown_role_code_is_refused(code):
    text = _message_of(lambda: serde.role_from_proto(code))

    assert text == f"unknown party role {code}"


# --- status -------------------------------------------------------------------


def _status(last_metrics: Metrics | None) -> PartyStatusView:
    return PartyStatusView(
        description=_description(),
        job_id="job-1",
        state="training",
        epoch=2,
        step=17,
        samples_per_second=512.5,
        last_metrics=last_metrics,
        uptime_seconds=60.25,
        peer_traffic=Traffic(1000, 200, 10, 2),
        peers=(
            PeerState("bob", "bob:50052", "bob", True),
            PeerState("carol", "carol:1", "carol", False, "UNAVAILABLE: refused"),
        ),
        transport_security="mutual-tls",
    )


def test_status_to_proto_with_metrics():
    metrics = Metrics(count=10, loss=0.5, auc=0.75, precision=0.25, recall=0.125)

    message = serde.status_to_proto(_status(metrics))

    assert message.party == "alice"
    assert message.role == common_pb2.ROLE_FEATURE
    assert message.protocol_version == "splitrec.v1"
    assert message.job_id == "job-1"
    assert message.state == "training"
    assert (message.epoch, message.step) == (2, 17)
    assert message.samples_per_second == 512.5
    assert message.uptime_seconds == 60.25
    assert message.transport_security == "mutual-tls"
    assert [(p.name, p.address, p.identity) for p in message.peers] == [
        ("bob", "bob:50052", "bob"),
        ("carol", "carol:1", "carol"),
    ]
    assert [(p.reachable, p.detail) for p in message.peers] == [
        (True, ""),
        (False, "UNAVAILABLE: refused"),
    ]
    assert message.has_metrics
    assert serde.metrics_from_proto(message.last_metrics) == metrics


def test_status_to_proto_without_metrics():
    message = serde.status_to_proto(_status(None))

    assert not message.has_metrics
    assert not message.HasField("last_metrics")
    assert message.state == "training"
    assert len(message.peers) == 2


def test_status_carries_peer_traffic_and_traffic_round_trips():
    message = serde.status_to_proto(_status(None))
    assert serde.traffic_from_proto(message.peer_traffic) == Traffic(1000, 200, 10, 2)
    again = serde.traffic_from_proto(serde.traffic_to_proto(Traffic(1, 2, 3, 4)))
    assert again == Traffic(1, 2, 3, 4)


def test_secure_aggregation_and_identities_round_trip_in_the_job_spec():
    spec = _job_spec()
    spec = dataclasses.replace(
        spec,
        secure_aggregation=True,
        parties=(dataclasses.replace(spec.parties[0], identity="alice.example"),)
        + spec.parties[1:],
    )
    back = serde.job_spec_from_proto(serde.job_spec_to_proto(spec))
    assert back == spec and back.identity("alice") == "alice.example"


def test_key_shares_and_masked_tensors_round_trip_and_oversized_parts_are_refused():
    from splitrec.privacy.secure_aggregation.key_shares import KeyShare

    share = KeyShare("j", "carol", bytes(32), b"-----CERT-----", bytes(70))
    assert serde.key_share_from_proto(serde.key_share_to_proto(share)) == share
    with pytest.raises(InvalidMessageError, match="signature of 300 bytes exceeds"):
        serde.key_share_from_proto(
            serde.key_share_to_proto(dataclasses.replace(share, signature=bytes(300)))
        )
    values = np.arange(6, dtype=np.uint64).reshape(2, 3) * np.uint64(2**61)
    message = serde.masked_to_proto(values, b"digest")
    back, keys = serde.masked_from_proto(message, (2, 3), "t")
    assert np.array_equal(back, values) and keys == b"digest"
    with pytest.raises(InvalidMessageError, match="expected shape"):
        serde.masked_from_proto(message, (3, 2), "t")
    floats = serde.masked_to_proto(np.zeros((2, 3), np.float32), b"")
    with pytest.raises(InvalidMessageError, match="expected dtype uint64"):
        serde.masked_from_proto(floats, (2, 3), "t")
