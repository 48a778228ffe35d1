"""Every conversion between protobuf messages and Python values, in one place.

Pairs are named ``x_to_proto`` / ``x_from_proto``. Decoding validates what it
reads: a bad message raises ``InvalidMessageError`` with a readable reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from google.protobuf import json_format

from splitrec.common.compression import METHODS as COMPRESSION_METHODS
from splitrec.common.compression import Compressed, Compressor
from splitrec.common.errors import ConfigError, InvalidMessageError
from splitrec.common.metrics import Metrics, TaskMetrics
from splitrec.common.names import name_problem, run_name_problem
from splitrec.common.online import (
    Embedded,
    ExportIdentity,
    KeptOut,
    PartView,
    Pushed,
    Scored,
    ServingView,
)
from splitrec.common.pipeline_plan import plan_from_pairs
from splitrec.common.traffic import Traffic
from splitrec.config.families import AGGREGATIONS
from splitrec.config.job import OPTIMIZERS
from splitrec.config.jobspec import (
    COMPENSATIONS,
    STRATEGIES,
    JobParty,
    JobSpec,
    ModelVersion,
    OutputSpec,
    PartExport,
    PartyDescription,
    PartyStatusView,
    PeerState,
)
from splitrec.config.limits import job_limit_problems
from splitrec.config.party import PartyRole
from splitrec.config.privacy import PrivacySettings, PrivacySpent
from splitrec.privacy.secure_aggregation.key_shares import KeyShare
from splitrec.v1 import common_pb2, control_pb2, peer_pb2, scoring_pb2, tensor_pb2

_DTYPES: dict[int, np.dtype] = {
    tensor_pb2.DTYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DTYPE_FLOAT16: np.dtype("<f2"),
    tensor_pb2.DTYPE_FLOAT64: np.dtype("<f8"),
    tensor_pb2.DTYPE_INT32: np.dtype("<i4"),
    tensor_pb2.DTYPE_INT64: np.dtype("<i8"),
    tensor_pb2.DTYPE_UINT8: np.dtype("u1"),
    tensor_pb2.DTYPE_UINT64: np.dtype("<u8"),
}
_DTYPE_CODES = {dtype: code for code, dtype in _DTYPES.items()}

# The largest tensor a party accepts by default (also the gRPC message limit).
MAX_TENSOR_BYTES = 64 * 1024 * 1024


def tensor_to_proto(array: np.ndarray) -> tensor_pb2.Tensor:
    """Encodes an array as dtype + shape + little-endian bytes."""
    message = tensor_pb2.Tensor()
    write_tensor(message, array)
    return message


def write_tensor(target: tensor_pb2.Tensor, array: np.ndarray) -> None:
    """Encodes an array into ``target``, a tensor field of a message being
    built (``message.forward.hidden``), as ``tensor_to_proto`` does. Its bytes
    are copied into the message once: a built tensor assigned to a field (or
    passed to a message's constructor) is copied again, whole."""
    array = np.asarray(array)
    dtype = (
        array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    )
    code = _DTYPE_CODES.get(np.dtype(dtype).newbyteorder("<"))
    if code is None:
        raise InvalidMessageError(f"dtype {array.dtype} cannot be sent as a tensor")
    target.dtype = code
    target.shape[:] = array.shape
    target.data = np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()


def _step_message(
    kind: str, field: str, key: common_pb2.StepKey, array: np.ndarray
) -> peer_pb2.PeerMessage:
    """A peer message whose ``kind`` part carries ``key`` and ``array`` in its
    tensor ``field``, built in place (no copy of a nested message)."""
    message = peer_pb2.PeerMessage()
    part = getattr(message, kind)
    part.key.CopyFrom(key)
    write_tensor(getattr(part, field), array)
    return message


def forward_to_proto(
    key: common_pb2.StepKey, hidden: np.ndarray
) -> peer_pb2.PeerMessage:
    """A peer message with one uncompressed hidden tensor."""
    return _step_message("forward", "hidden", key, hidden)


def backward_to_proto(
    key: common_pb2.StepKey, gradient: np.ndarray
) -> peer_pb2.PeerMessage:
    """A peer message with one uncompressed gradient."""
    return _step_message("backward", "gradient", key, gradient)


def tensor_from_proto(
    message: tensor_pb2.Tensor,
    *,
    shape: tuple[int | None, ...] | None = None,
    dtype: np.dtype | str | None = None,
    max_bytes: int = MAX_TENSOR_BYTES,
    what: str = "tensor",
) -> np.ndarray:
    """Decodes a tensor; checks shape, size, finiteness.

    ``shape`` may hold ``None`` for a dimension of any size; ``dtype``, when given,
    is the only element type accepted. The message's bytes are read once (each
    read of a bytes field is a copy) and the result is a read-only view over
    that copy.
    """
    wire = _DTYPES.get(message.dtype)
    if wire is None:
        known = message.dtype in tensor_pb2.DType.values()
        name = tensor_pb2.DType.Name(message.dtype) if known else str(message.dtype)
        raise InvalidMessageError(f"{what}: unsupported dtype {name}")
    if dtype is not None and wire != np.dtype(dtype).newbyteorder("<"):
        raise InvalidMessageError(
            f"{what}: expected dtype {np.dtype(dtype).name}, got {wire.name}"
        )
    dims = tuple(int(d) for d in message.shape)
    if any(d < 0 for d in dims):
        raise InvalidMessageError(f"{what}: negative dimension in shape {dims}")
    data = message.data
    if len(data) > max_bytes:
        raise InvalidMessageError(
            f"{what}: {len(data)} bytes exceeds the limit of {max_bytes}"
        )
    _check_shape(dims, shape, what)
    expected = int(np.prod(dims, dtype=np.int64)) * wire.itemsize
    if expected != len(data):
        raise InvalidMessageError(
            f"{what}: shape {dims} of {wire.name} needs {expected} bytes, got "
            f"{len(data)}"
        )
    array = np.frombuffer(data, dtype=wire).reshape(dims)
    if wire.kind == "f" and not np.isfinite(array).all():
        raise InvalidMessageError(f"{what}: holds NaN or infinite values")
    return array


def _check_shape(
    dims: tuple[int, ...], expected: tuple[int | None, ...] | None, what: str
) -> None:
    if expected is None:
        return
    matches = len(dims) == len(expected) and all(
        want is None or want == got for want, got in zip(expected, dims, strict=True)
    )
    if not matches:
        shown = tuple("?" if d is None else d for d in expected)
        raise InvalidMessageError(f"{what}: expected shape {shown}, got {dims}")


# Bounds on what a party may say its base outputs.
MAX_OUTPUT_PARTS = 64
MAX_OUTPUT_WIDTH = 1 << 16


def output_spec_to_proto(spec: OutputSpec) -> common_pb2.OutputSpec:
    return common_pb2.OutputSpec(
        family=spec.family,
        parts=[common_pb2.OutputPart(name=n, size=size) for n, size in spec.parts],
        structure=spec.structure,
    )


def output_spec_from_proto(
    message: common_pb2.OutputSpec, role: PartyRole = PartyRole.FEATURE
) -> OutputSpec:
    """The output spec of a party of ``role``: a label party that holds labels
    alone outputs nothing (no parts); every other output has 1 to
    ``MAX_OUTPUT_PARTS``."""
    problem = name_problem(message.family)
    if problem is not None:
        raise InvalidMessageError(f"output spec: model family: {problem}")
    fewest = 0 if role is PartyRole.LABEL else 1
    if not fewest <= len(message.parts) <= MAX_OUTPUT_PARTS:
        raise InvalidMessageError(
            f"output spec of family {message.family!r} needs {fewest} to "
            f"{MAX_OUTPUT_PARTS} parts, got {len(message.parts)}"
            + (" (only the label party may output nothing)" if not fewest else "")
        )
    parts = tuple((p.name, p.size) for p in message.parts)
    names = [name for name, _ in parts]
    for name, size in parts:
        problem = name_problem(name)
        if problem is not None or size <= 0 or names.count(name) > 1:
            raise InvalidMessageError(
                f"output spec of family {message.family!r}: part {name!r} of size "
                f"{size} (each part needs a distinct name and a positive size)"
            )
    spec = OutputSpec(message.family, parts, message.structure)
    if spec.width > MAX_OUTPUT_WIDTH or len(spec.structure) > 128:
        raise InvalidMessageError(
            f"output spec of family {message.family!r} is too large: width "
            f"{spec.width} (at most {MAX_OUTPUT_WIDTH}), structure digest of "
            f"{len(spec.structure)} characters (at most 128)"
        )
    return spec


_ROLES = {
    PartyRole.FEATURE: common_pb2.ROLE_FEATURE,
    PartyRole.LABEL: common_pb2.ROLE_LABEL,
}


def role_to_proto(role: PartyRole) -> int:
    return _ROLES[role]


def role_from_proto(code: int) -> PartyRole:
    for role, value in _ROLES.items():
        if value == code:
            return role
    raise InvalidMessageError(f"unknown party role {code}")


def job_spec_to_proto(spec: JobSpec) -> control_pb2.JobSpec:
    return control_pb2.JobSpec(
        job_id=spec.job_id,
        seed=spec.seed,
        batch_size=spec.batch_size,
        epochs=spec.epochs,
        optimizer=control_pb2.OptimizerSpec(
            name=spec.optimizer, learning_rate=spec.learning_rate
        ),
        validation_fraction=spec.validation_fraction,
        label_party=spec.label_party,
        pipeline_size=spec.pipeline_size,
        pipeline_warmup_steps=spec.pipeline_warmup_steps,
        pipeline_auto=spec.pipeline_auto,
        compensation=spec.compensation,
        pipeline_plan=[
            control_pb2.PipelineChoice(party=party, step=step, depth=depth)
            for party, step, depth in spec.pipeline_plan
        ],
        strategy=spec.strategy,
        local_steps=spec.local_steps,
        compression=spec.compression,
        compression_ratio=spec.compression_ratio,
        privacy=privacy_to_proto(spec.privacy),
        aggregation=spec.aggregation,
        parties=[
            control_pb2.JobParty(
                name=p.name,
                role=role_to_proto(p.role),
                output=output_spec_to_proto(p.output),
                identity=p.identity,
            )
            for p in spec.parties
        ],
        secure_aggregation=spec.secure_aggregation,
        init_from=(
            control_pb2.InitFrom(
                job_id=spec.init_from.job,
                version=spec.init_from.version,
                epoch=spec.init_from.epoch,
                export_id=spec.init_from.export_id,
                files=spec.init_from.files,
            )
            if spec.init_from is not None
            else None
        ),
        dataset=spec.dataset,
    )


def _init_from(message: control_pb2.JobSpec) -> ModelVersion | None:
    """The warm start's model version; its names must be safe names."""
    if not message.HasField("init_from"):
        return None
    found = message.init_from
    names = {"job_id": found.job_id, "version": found.version}
    names.update({f"files[{p!r}]": p for p in found.files})
    if found.export_id:
        names["export_id"] = found.export_id
    for field, value in names.items():
        problem = name_problem(value)
        if problem is not None:
            raise InvalidMessageError(f"job spec init_from.{field}: {problem}")
    if not 0 < found.epoch < message.epochs:
        raise InvalidMessageError(
            f"job spec init_from.epoch {found.epoch}: a warm-started job of "
            f"{message.epochs} epochs continues after epoch 1..{message.epochs - 1}"
        )
    return ModelVersion(
        found.job_id, found.version, found.epoch, found.export_id, dict(found.files)
    )


def job_spec_from_proto(message: control_pb2.JobSpec) -> JobSpec:
    """The job spec, refused with ``InvalidMessageError`` unless every name is a
    safe path component and every number lies in its config range."""
    names = {"label_party": message.label_party}
    names.update({f"parties[{i}].name": p.name for i, p in enumerate(message.parties)})
    for field, value in names.items():
        problem = name_problem(value)
        if problem is not None:
            raise InvalidMessageError(f"job spec {field}: {problem}")
    parties = tuple(
        JobParty(
            name=p.name,
            role=role_from_proto(p.role),
            output=output_spec_from_proto(
                p.output,
                PartyRole.LABEL if p.name == message.label_party else PartyRole.FEATURE,
            ),
            identity=p.identity,
        )
        for p in message.parties
    )
    spec = JobSpec(
        job_id=message.job_id,
        seed=message.seed,
        batch_size=message.batch_size,
        epochs=message.epochs,
        optimizer=message.optimizer.name,
        learning_rate=message.optimizer.learning_rate,
        validation_fraction=message.validation_fraction,
        label_party=message.label_party,
        parties=parties,
        pipeline_size=max(1, message.pipeline_size),
        pipeline_warmup_steps=max(0, message.pipeline_warmup_steps),
        pipeline_auto=message.pipeline_auto,
        compensation=message.compensation or "none",
        strategy=message.strategy or "sync",
        local_steps=max(1, message.local_steps),
        pipeline_plan=tuple((c.party, c.step, c.depth) for c in message.pipeline_plan),
        compression=message.compression or "none",
        compression_ratio=message.compression_ratio or 1.0,
        privacy=privacy_from_proto(message.privacy),
        aggregation=message.aggregation or "concat",
        secure_aggregation=message.secure_aggregation,
        init_from=_init_from(message),
        dataset=message.dataset,
    )
    if spec.dataset:
        problem = name_problem(spec.dataset)
        if problem is not None:
            raise InvalidMessageError(f"job spec dataset: {problem}")
        if spec.init_from is None:
            raise InvalidMessageError(
                "job spec dataset: scoring a dataset needs the model to score with "
                "(init_from)"
            )
    problem = run_name_problem(spec.job_id, spec.scored)
    if problem is not None:
        raise InvalidMessageError(f"job spec job_id: {problem}")
    if spec.aggregation not in AGGREGATIONS:
        raise InvalidMessageError(
            f"job spec aggregation {spec.aggregation!r}: use one of "
            f"{list(AGGREGATIONS)}"
        )
    for key, problem in job_limit_problems(spec):
        raise InvalidMessageError(f"job spec {key}: {problem}")
    for name, allowed in (
        ("optimizer", OPTIMIZERS),
        ("compression", COMPRESSION_METHODS),
        ("strategy", STRATEGIES),
        ("compensation", COMPENSATIONS),
    ):
        value = getattr(spec, name)
        if value not in allowed:
            raise InvalidMessageError(
                f"job spec {name} {value!r}: use one of {allowed}"
            )
    for party, step, depth in spec.pipeline_plan:
        if spec.party(party) is None:
            raise InvalidMessageError(
                f"job spec pipeline_plan names {party!r}, not a party of the job"
            )
        try:
            plan_from_pairs([[step, depth]], f"job spec pipeline_plan of {party}")
        except ConfigError as exc:
            raise InvalidMessageError(str(exc)) from None
    return spec


def privacy_to_proto(settings: PrivacySettings) -> control_pb2.PrivacySpec:
    return control_pb2.PrivacySpec(
        clip_norm=settings.clip_norm,
        noise_multiplier=settings.noise_multiplier,
        delta=settings.delta,
        label_epsilon=settings.label_epsilon,
        gradient_defense=settings.gradient_defense,
        defense_scale=settings.defense_scale,
        leakage_probe=settings.leakage_probe,
        task=settings.task,
        nopeek=settings.nopeek,
        embedding_dp_releases=settings.dp_releases,
        mid_weight=settings.mid_weight,
        mid_dim=settings.mid_dim,
        embedding_dp_per_user=settings.dp_per_user,
        mid_releases=settings.mid_releases,
    )


def privacy_from_proto(message: control_pb2.PrivacySpec) -> PrivacySettings:
    settings = PrivacySettings(
        clip_norm=message.clip_norm,
        noise_multiplier=message.noise_multiplier,
        delta=message.delta or PrivacySettings.delta,
        label_epsilon=message.label_epsilon,
        gradient_defense=message.gradient_defense or "none",
        defense_scale=message.defense_scale or 1.0,
        leakage_probe=message.leakage_probe,
        task=message.task,
        nopeek=message.nopeek,
        dp_releases=message.embedding_dp_releases or "training",
        mid_weight=message.mid_weight,
        mid_dim=message.mid_dim or PrivacySettings.mid_dim,
        dp_per_user=message.embedding_dp_per_user,
        mid_releases=message.mid_releases or "training",
    )
    for key, problem in settings.problems():
        raise InvalidMessageError(f"job spec privacy {key}: {problem}")
    return settings


def privacy_status_to_proto(
    settings: PrivacySettings, spent: PrivacySpent | None
) -> control_pb2.PrivacyStatus:
    status = control_pb2.PrivacyStatus(
        embedding_dp=settings.embedding_dp,
        label_epsilon=settings.label_epsilon,
        gradient_defense=settings.gradient_defense,
    )
    if spent is not None:
        status.epsilon = spent.epsilon
        status.epsilon_per_row = spent.epsilon_per_row
        status.delta = spent.delta
        if spent.epsilon_per_user is not None:
            status.epsilon_per_user = spent.epsilon_per_user
    return status


def metrics_to_proto(metrics: Metrics) -> control_pb2.Metrics:
    return control_pb2.Metrics(
        count=metrics.count,
        loss=metrics.loss,
        auc=metrics.auc,
        precision=metrics.precision,
        recall=metrics.recall,
        tasks=[
            control_pb2.TaskMetrics(
                name=t.name,
                loss=t.loss,
                auc=t.auc,
                precision=t.precision,
                recall=t.recall,
            )
            for t in metrics.tasks
        ],
    )


def metrics_from_proto(message: control_pb2.Metrics) -> Metrics:
    return Metrics(
        count=message.count,
        loss=message.loss,
        auc=message.auc,
        precision=message.precision,
        recall=message.recall,
        tasks=tuple(
            TaskMetrics(t.name, t.loss, t.auc, t.precision, t.recall)
            for t in message.tasks
        ),
    )


_SPLITS = {
    "train": common_pb2.SPLIT_TRAIN,
    "validation": common_pb2.SPLIT_VALIDATION,
    "all": common_pb2.SPLIT_ALL,
}


def split_to_proto(name: str) -> int:
    return _SPLITS[name]


def split_from_proto(code: int) -> str:
    for name, value in _SPLITS.items():
        if value == code:
            return name
    raise InvalidMessageError(f"unknown split {code}; use TRAIN, VALIDATION or ALL")


def description_to_proto(description: PartyDescription) -> control_pb2.PartyDescription:
    return control_pb2.PartyDescription(
        party=description.party,
        role=role_to_proto(description.role),
        protocol_version=description.protocol_version,
        num_rows=description.num_rows,
        output=output_spec_to_proto(description.output),
        features=list(description.features),
        peers=list(description.peers),
        fingerprint=description.fingerprint,
        aggregation=description.aggregation,
        secure_aggregation=description.secure_aggregation,
    )


def description_from_proto(message: control_pb2.PartyDescription) -> PartyDescription:
    role = role_from_proto(message.role)
    return PartyDescription(
        party=message.party,
        role=role,
        protocol_version=message.protocol_version,
        num_rows=message.num_rows,
        output=output_spec_from_proto(message.output, role),
        features=tuple(message.features),
        peers=tuple(message.peers),
        fingerprint=dict(message.fingerprint),
        aggregation=message.aggregation,
        secure_aggregation=message.secure_aggregation,
    )


def optional_metrics_to_proto(metrics: Metrics | None) -> dict:
    """``has_metrics``/``metrics`` fields for messages that carry optional metrics."""
    if metrics is None:
        return {"has_metrics": False}
    return {"has_metrics": True, "metrics": metrics_to_proto(metrics)}


def optional_metrics_from_proto(message: object) -> Metrics | None:
    if not message.has_metrics:
        return None
    return metrics_from_proto(message.metrics)


def status_to_proto(view: PartyStatusView) -> control_pb2.PartyStatus:
    return control_pb2.PartyStatus(
        party=view.description.party,
        role=role_to_proto(view.description.role),
        protocol_version=view.description.protocol_version,
        job_id=view.job_id,
        state=view.state,
        epoch=view.epoch,
        step=view.step,
        samples_per_second=view.samples_per_second,
        peers=[peer_state_to_proto(p) for p in view.peers],
        transport_security=view.transport_security,
        uptime_seconds=view.uptime_seconds,
        last_metrics=metrics_to_proto(view.last_metrics) if view.last_metrics else None,
        peer_traffic=traffic_to_proto(view.peer_traffic),
        has_metrics=view.last_metrics is not None,
        privacy=privacy_status_to_proto(view.privacy, view.spent),
        job_owner=view.job_owner,
        serving=(
            serving_view_to_proto(view.serving) if view.serving is not None else None
        ),
        in_flight_peak=view.in_flight_peak,
        pipeline_depth=view.pipeline_depth,
    )


def status_to_dict(message: control_pb2.PartyStatus) -> dict:
    """A party's status for people and notebooks: the message's fields by
    their proto names, defaults included (what ``grpcurl`` shows)."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def peer_state_to_proto(state: PeerState) -> control_pb2.PeerState:
    return control_pb2.PeerState(
        name=state.name,
        address=state.address,
        identity=state.identity,
        reachable=state.reachable,
        detail=state.detail,
    )


def traffic_to_proto(traffic: Traffic) -> control_pb2.Traffic:
    return control_pb2.Traffic(
        bytes_sent=traffic.bytes_sent,
        bytes_received=traffic.bytes_received,
        messages_sent=traffic.messages_sent,
        messages_received=traffic.messages_received,
    )


def traffic_from_proto(message: control_pb2.Traffic) -> Traffic:
    return Traffic(
        message.bytes_sent,
        message.bytes_received,
        message.messages_sent,
        message.messages_received,
    )


# --- private set intersection -------------------------------------------------

# Values per PsiValues message: 32,768 points are 1 MiB.
PSI_CHUNK_VALUES = 32_768
_PSI_STAGES = {
    "blinded": peer_pb2.PSI_STAGE_BLINDED,
    "double_blinded": peer_pb2.PSI_STAGE_DOUBLE_BLINDED,
    "aligned": peer_pb2.PSI_STAGE_ALIGNED,
}


def psi_values_to_proto(
    stage: str, values: bytes, width: int, last: bool = True
) -> list[peer_pb2.PsiMessage]:
    """``values`` (fixed-width, concatenated) as a run of chunk messages; the
    run's final message is marked ``last`` unless more follow (``last``
    false)."""
    step = PSI_CHUNK_VALUES * width
    starts = range(0, max(len(values), 1), step)
    return [
        peer_pb2.PsiMessage(
            values=peer_pb2.PsiValues(
                stage=_PSI_STAGES[stage],
                width=width,
                values=values[start : start + step],
                last=last and start + step >= len(values),
            )
        )
        for start in starts
    ]


def psi_stream_to_proto(
    stage: str, chunks: Iterable[bytes], width: int
) -> Iterator[peer_pb2.PsiMessage]:
    """Chunks of values, as they come, as one run of chunk messages (the
    messages ``psi_values_to_proto`` gives for their concatenation)."""
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield from psi_values_to_proto(stage, held, width, last=False)
        held = chunk
    yield from psi_values_to_proto(stage, held or b"", width)


def psi_value_chunks(
    messages: object, stage: str, width: int, expected: int | None = None
) -> Iterator[bytes]:
    """The values of one stage's chunks read from ``messages`` (an iterator),
    a chunk at a time.

    Raises ``InvalidMessageError`` for another message kind or stage, a wrong
    width, a chunk that is not whole values, or a total other than ``expected``
    values (more values than expected as soon as they come).
    """
    total = 0
    while True:
        message = next(messages, None)
        if message is None:
            raise InvalidMessageError(f"the PSI stream ended before the {stage} values")
        if message.WhichOneof("kind") != "values":
            raise InvalidMessageError(
                f"expected {stage} values in the PSI stream, got "
                f"{message.WhichOneof('kind')}"
            )
        chunk = message.values
        if chunk.stage != _PSI_STAGES[stage] or chunk.width != width:
            raise InvalidMessageError(
                f"expected {stage} values {width} bytes wide, got stage "
                f"{peer_pb2.PsiStage.Name(chunk.stage)} width {chunk.width}"
            )
        if len(chunk.values) % width:
            raise InvalidMessageError(
                f"a PSI chunk of {len(chunk.values)} bytes is not whole "
                f"{width}-byte values"
            )
        total += len(chunk.values) // width
        if expected is not None and total > expected:
            raise InvalidMessageError(
                f"expected {expected} {stage} values, got more ({total} so far)"
            )
        if chunk.values:
            yield chunk.values
        if chunk.last:
            break
    if expected is not None and total != expected:
        raise InvalidMessageError(f"expected {expected} {stage} values, got {total}")


# --- compressed tensors -------------------------------------------------------

_COMPRESSED_DTYPES = {
    "float32": tensor_pb2.DTYPE_FLOAT32,
    "float16": tensor_pb2.DTYPE_FLOAT16,
    "uint8": tensor_pb2.DTYPE_UINT8,
}


def compressed_to_proto(packed: Compressed) -> tensor_pb2.CompressedTensor:
    return tensor_pb2.CompressedTensor(
        shape=list(packed.shape),
        dtype=_COMPRESSED_DTYPES[packed.values.dtype.name],
        values=np.ascontiguousarray(packed.values)
        .astype(packed.values.dtype.newbyteorder("<"))
        .tobytes(),
        positions=(
            packed.positions.astype("<u4").tobytes()
            if packed.positions is not None
            else b""
        ),
        scale=packed.scale,
        zero_point=packed.zero_point,
    )


def compressed_from_proto(
    message: tensor_pb2.CompressedTensor,
    compressor: Compressor,
    shape: tuple[int, ...],
    *,
    gradient: bool,
    what: str,
) -> Compressed:
    """Decodes a compressed tensor and checks it against what ``compressor``
    sends for a tensor of ``shape`` (dtype, value count, positions, scale)."""
    dims = tuple(int(d) for d in message.shape)
    if dims != tuple(shape):
        raise InvalidMessageError(f"{what}: expected shape {tuple(shape)}, got {dims}")
    expected_dtype, count, with_positions = compressor.wire_layout(shape, gradient)
    wire = _DTYPES.get(message.dtype)
    if wire is None or wire.name != expected_dtype:
        raise InvalidMessageError(
            f"{what}: {compressor.method} sends {expected_dtype} values, got "
            f"{wire.name if wire is not None else message.dtype}"
        )
    if len(message.values) != count * wire.itemsize:
        raise InvalidMessageError(
            f"{what}: {compressor.method} sends {count} values "
            f"({count * wire.itemsize} bytes), got {len(message.values)} bytes"
        )
    values = np.frombuffer(message.values, dtype=wire)
    if wire.kind == "f" and not np.isfinite(values).all():
        raise InvalidMessageError(f"{what}: holds NaN or infinite values")
    if not (np.isfinite(message.scale) and np.isfinite(message.zero_point)):
        raise InvalidMessageError(f"{what}: scale or zero point is not finite")
    positions = None
    if with_positions:
        if len(message.positions) != count * 4:
            raise InvalidMessageError(
                f"{what}: expected {count} positions, got {len(message.positions) // 4}"
            )
        positions = np.frombuffer(message.positions, dtype="<u4")
        size = int(np.prod(shape))
        if positions.size and (
            int(positions.max()) >= size
            or (np.diff(positions.astype(np.int64)) <= 0).any()
        ):
            raise InvalidMessageError(
                f"{what}: positions must be increasing and below {size}"
            )
    elif message.positions:
        raise InvalidMessageError(f"{what}: {compressor.method} sends no positions")
    return Compressed(dims, values, positions, message.scale, message.zero_point)


# Bounds on a key share's parts (a PEM certificate chain stays far below).
_MAX_CERTIFICATE_BYTES = 16 * 1024
_MAX_SIGNATURE_BYTES = 256


def key_share_to_proto(share: KeyShare) -> peer_pb2.KeyShare:
    return peer_pb2.KeyShare(
        job_id=share.job_id,
        party=share.party,
        public_key=share.public_key,
        certificate=share.certificate,
        signature=share.signature,
    )


def key_share_from_proto(message: peer_pb2.KeyShare) -> KeyShare:
    """The share, refused when a part is larger than any real one."""
    sizes = {
        "public_key": (len(message.public_key), 64),
        "certificate": (len(message.certificate), _MAX_CERTIFICATE_BYTES),
        "signature": (len(message.signature), _MAX_SIGNATURE_BYTES),
    }
    for name, (size, limit) in sizes.items():
        if size > limit:
            raise InvalidMessageError(
                f"key share of {message.party!r}: {name} of {size} bytes exceeds "
                f"{limit}"
            )
    return KeyShare(
        job_id=message.job_id,
        party=message.party,
        public_key=message.public_key,
        certificate=message.certificate,
        signature=message.signature,
    )


def masked_to_proto(values: np.ndarray, keys: bytes) -> peer_pb2.MaskedTensor:
    """A masked fixed-point tensor (uint64) and the digest of its keys."""
    return peer_pb2.MaskedTensor(values=tensor_to_proto(values), keys=keys)


def masked_from_proto(
    message: peer_pb2.MaskedTensor, shape: tuple[int, ...], what: str
) -> tuple[np.ndarray, bytes]:
    """The uint64 values, checked against ``shape``, and the keys' digest."""
    values = tensor_from_proto(message.values, shape=shape, dtype="<u8", what=what)
    return values, bytes(message.keys)


def embed_request_to_proto(
    job: str, version: str, party: str, keys: list[str]
) -> peer_pb2.EmbedRequest:
    return peer_pb2.EmbedRequest(job_id=job, version=version, party=party, keys=keys)


def embed_reply_to_proto(embedded: Embedded) -> peer_pb2.EmbedResponse:
    return peer_pb2.EmbedResponse(
        model_digest=embedded.model_digest,
        table_digest=embedded.table_digest,
        outputs=tensor_to_proto(np.asarray(embedded.outputs, np.float32)),
        unknown=embedded.unknown.tolist(),
        export=export_identity_to_proto(embedded.export),
    )


def embed_reply_from_proto(message: peer_pb2.EmbedResponse, keys: int) -> Embedded:
    """A feature party's answer to a request of ``keys`` keys, checked: the
    unknown positions are distinct and in range, one output row per other key."""
    unknown = np.array(message.unknown, np.int64)
    if len(set(unknown.tolist())) != len(unknown) or (
        len(unknown) and (unknown.min() < 0 or unknown.max() >= keys)
    ):
        raise InvalidMessageError(
            f"Embed answer: unknown key positions outside 0..{keys - 1} or repeated"
        )
    outputs = tensor_from_proto(
        message.outputs,
        shape=(keys - len(unknown), None),
        dtype=np.float32,
        what="Embed answer outputs",
    )
    return Embedded(
        message.model_digest,
        message.table_digest,
        outputs,
        unknown,
        export_identity_from_proto(message.export),
    )


def score_request_from_proto(message: scoring_pb2.ScoreRequest) -> dict[str, list[str]]:
    """Each party's keys; a party named twice is refused."""
    found: dict[str, list[str]] = {}
    for entities in message.entities:
        if entities.party in found:
            raise InvalidMessageError(
                f"party {entities.party!r} is named twice; give its keys once"
            )
        found[entities.party] = list(entities.keys)
    return found


def score_request_to_proto(keys: dict[str, list[str]]) -> scoring_pb2.ScoreRequest:
    return scoring_pb2.ScoreRequest(
        entities=[scoring_pb2.EntityKeys(party=p, keys=k) for p, k in keys.items()]
    )


def scored_to_proto(scored: Scored) -> scoring_pb2.ScoreResponse:
    rows = [
        scoring_pb2.RowScore(problem=problem)
        if problem
        else scoring_pb2.RowScore(scores=scores.tolist())
        for scores, problem in zip(scored.scores, scored.problems, strict=True)
    ]
    return scoring_pb2.ScoreResponse(
        version=scored.version,
        tasks=list(scored.tasks),
        rows=rows,
        cached=scored.cached,
        fetched=scored.fetched,
    )


def part_view_to_proto(part: PartView) -> scoring_pb2.PartServing:
    return scoring_pb2.PartServing(
        party=part.party,
        model_digest=part.model_digest,
        key_column=part.key_column,
        entities=part.entities,
        table_digest=part.table_digest,
        export_id=part.export.export_id,
        epoch=part.export.epoch,
    )


def kept_out_to_proto(kept: KeptOut) -> scoring_pb2.KeptOut:
    return scoring_pb2.KeptOut(kind=kept.kind, name=kept.name, reason=kept.reason)


def kept_out_from_proto(message: scoring_pb2.KeptOut) -> KeptOut:
    return KeptOut(message.kind, message.name, message.reason)


def serving_view_to_proto(view: ServingView) -> scoring_pb2.ServingStatus:
    return scoring_pb2.ServingStatus(
        ready=view.ready,
        problem=view.problem,
        job=view.job,
        version=view.version,
        tasks=list(view.tasks),
        parts=[part_view_to_proto(p) for p in view.parts],
        cached_outputs=view.cached_outputs,
        kept_out=[kept_out_to_proto(k) for k in view.kept_out],
    )


def export_identity_to_proto(identity: ExportIdentity) -> peer_pb2.ExportIdentity:
    return peer_pb2.ExportIdentity(
        job_id=identity.job,
        version=identity.version,
        epoch=identity.epoch,
        export_id=identity.export_id,
    )


def export_identity_from_proto(message: peer_pb2.ExportIdentity) -> ExportIdentity:
    return ExportIdentity(
        message.job_id, message.version, message.epoch, message.export_id
    )


def prepared_serving_to_proto(
    model_digest: str, entities: int, identity: ExportIdentity
) -> peer_pb2.PrepareServingResponse:
    return peer_pb2.PrepareServingResponse(
        model_digest=model_digest,
        entities=entities,
        export=export_identity_to_proto(identity),
    )


def part_export_to_proto(
    version: str, part: PartExport
) -> control_pb2.ExportModelReply:
    return control_pb2.ExportModelReply(
        version=version,
        model_digest=part.model_digest,
        export_id=part.export_id,
        files_digest=part.files_digest,
    )


def part_export_from_proto(message: control_pb2.ExportModelReply) -> PartExport:
    """A party's report of its exported part; refused without its file list's
    digest or export id (a party older than checked exports)."""
    if not message.files_digest or not message.export_id:
        raise InvalidMessageError(
            f"ExportModel answer for version {message.version!r} lacks the part's "
            "file-list digest or export id; update the party"
        )
    return PartExport(message.model_digest, message.files_digest, message.export_id)


def pushed_to_proto(chunk: Pushed) -> peer_pb2.PushChunk:
    return peer_pb2.PushChunk(
        model_digest=chunk.model_digest,
        table_digest=chunk.table_digest,
        keys=chunk.keys,
        outputs=tensor_to_proto(np.asarray(chunk.outputs, np.float32)),
        export=export_identity_to_proto(chunk.export),
    )


def pushed_from_proto(message: peer_pb2.PushChunk) -> Pushed:
    """A chunk of pushed outputs, one row per key."""
    keys = list(message.keys)
    outputs = tensor_from_proto(
        message.outputs,
        shape=(len(keys), None),
        dtype=np.float32,
        what="pushed outputs",
    )
    return Pushed(
        message.model_digest,
        message.table_digest,
        keys,
        outputs,
        export_identity_from_proto(message.export),
    )
