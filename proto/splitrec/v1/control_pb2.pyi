from splitrec.v1 import common_pb2 as _common_pb2
from splitrec.v1 import scoring_pb2 as _scoring_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Owner(_message.Message):
    __slots__ = ("token", "description")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    token: str
    description: str
    def __init__(self, token: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class HoldJobRequest(_message.Message):
    __slots__ = ("job_id", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    owner: Owner
    def __init__(self, job_id: _Optional[str] = ..., owner: _Optional[_Union[Owner, _Mapping]] = ...) -> None: ...

class HoldJobReply(_message.Message):
    __slots__ = ("heartbeat_seconds",)
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_seconds: float
    def __init__(self, heartbeat_seconds: _Optional[float] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartyDescription(_message.Message):
    __slots__ = ("party", "role", "protocol_version", "num_rows", "output", "features", "peers", "fingerprint", "aggregation", "secure_aggregation")
    class FingerprintEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PARTY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_ROWS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    SECURE_AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    party: str
    role: _common_pb2.Role
    protocol_version: str
    num_rows: int
    output: _common_pb2.OutputSpec
    features: _containers.RepeatedScalarFieldContainer[str]
    peers: _containers.RepeatedScalarFieldContainer[str]
    fingerprint: _containers.ScalarMap[str, str]
    aggregation: str
    secure_aggregation: bool
    def __init__(self, party: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., protocol_version: _Optional[str] = ..., num_rows: _Optional[int] = ..., output: _Optional[_Union[_common_pb2.OutputSpec, _Mapping]] = ..., features: _Optional[_Iterable[str]] = ..., peers: _Optional[_Iterable[str]] = ..., fingerprint: _Optional[_Mapping[str, str]] = ..., aggregation: _Optional[str] = ..., secure_aggregation: _Optional[bool] = ...) -> None: ...

class OptimizerSpec(_message.Message):
    __slots__ = ("name", "learning_rate")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    learning_rate: float
    def __init__(self, name: _Optional[str] = ..., learning_rate: _Optional[float] = ...) -> None: ...

class JobParty(_message.Message):
    __slots__ = ("name", "role", "output", "identity")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: _common_pb2.Role
    output: _common_pb2.OutputSpec
    identity: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., output: _Optional[_Union[_common_pb2.OutputSpec, _Mapping]] = ..., identity: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("job_id", "seed", "batch_size", "epochs", "optimizer", "validation_fraction", "label_party", "parties", "pipeline_size", "pipeline_warmup_steps", "compression", "compression_ratio", "privacy", "aggregation", "secure_aggregation", "init_from", "dataset", "pipeline_auto", "compensation", "pipeline_plan", "strategy", "local_steps")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    LABEL_PARTY_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    SECURE_AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    INIT_FROM_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_AUTO_FIELD_NUMBER: _ClassVar[int]
    COMPENSATION_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_PLAN_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    seed: int
    batch_size: int
    epochs: int
    optimizer: OptimizerSpec
    validation_fraction: float
    label_party: str
    parties: _containers.RepeatedCompositeFieldContainer[JobParty]
    pipeline_size: int
    pipeline_warmup_steps: int
    compression: str
    compression_ratio: float
    privacy: PrivacySpec
    aggregation: str
    secure_aggregation: bool
    init_from: InitFrom
    dataset: str
    pipeline_auto: bool
    compensation: str
    pipeline_plan: _containers.RepeatedCompositeFieldContainer[PipelineChoice]
    strategy: str
    local_steps: int
    def __init__(self, job_id: _Optional[str] = ..., seed: _Optional[int] = ..., batch_size: _Optional[int] = ..., epochs: _Optional[int] = ..., optimizer: _Optional[_Union[OptimizerSpec, _Mapping]] = ..., validation_fraction: _Optional[float] = ..., label_party: _Optional[str] = ..., parties: _Optional[_Iterable[_Union[JobParty, _Mapping]]] = ..., pipeline_size: _Optional[int] = ..., pipeline_warmup_steps: _Optional[int] = ..., compression: _Optional[str] = ..., compression_ratio: _Optional[float] = ..., privacy: _Optional[_Union[PrivacySpec, _Mapping]] = ..., aggregation: _Optional[str] = ..., secure_aggregation: _Optional[bool] = ..., init_from: _Optional[_Union[InitFrom, _Mapping]] = ..., dataset: _Optional[str] = ..., pipeline_auto: _Optional[bool] = ..., compensation: _Optional[str] = ..., pipeline_plan: _Optional[_Iterable[_Union[PipelineChoice, _Mapping]]] = ..., strategy: _Optional[str] = ..., local_steps: _Optional[int] = ...) -> None: ...

class PipelineChoice(_message.Message):
    __slots__ = ("party", "step", "depth")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    party: str
    step: int
    depth: int
    def __init__(self, party: _Optional[str] = ..., step: _Optional[int] = ..., depth: _Optional[int] = ...) -> None: ...

class InitFrom(_message.Message):
    __slots__ = ("job_id", "version", "epoch", "export_id", "files")
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: str
    epoch: int
    export_id: str
    files: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[str] = ..., epoch: _Optional[int] = ..., export_id: _Optional[str] = ..., files: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PrivacySpec(_message.Message):
    __slots__ = ("clip_norm", "noise_multiplier", "delta", "label_epsilon", "gradient_defense", "defense_scale", "leakage_probe", "task", "nopeek", "embedding_dp_releases", "mid_weight", "mid_dim", "embedding_dp_per_user", "mid_releases")
    CLIP_NORM_FIELD_NUMBER: _ClassVar[int]
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    LABEL_EPSILON_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_DEFENSE_FIELD_NUMBER: _ClassVar[int]
    DEFENSE_SCALE_FIELD_NUMBER: _ClassVar[int]
    LEAKAGE_PROBE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    NOPEEK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DP_RELEASES_FIELD_NUMBER: _ClassVar[int]
    MID_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MID_DIM_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DP_PER_USER_FIELD_NUMBER: _ClassVar[int]
    MID_RELEASES_FIELD_NUMBER: _ClassVar[int]
    clip_norm: float
    noise_multiplier: float
    delta: float
    label_epsilon: float
    gradient_defense: str
    defense_scale: float
    leakage_probe: bool
    task: str
    nopeek: float
    embedding_dp_releases: str
    mid_weight: float
    mid_dim: int
    embedding_dp_per_user: bool
    mid_releases: str
    def __init__(self, clip_norm: _Optional[float] = ..., noise_multiplier: _Optional[float] = ..., delta: _Optional[float] = ..., label_epsilon: _Optional[float] = ..., gradient_defense: _Optional[str] = ..., defense_scale: _Optional[float] = ..., leakage_probe: _Optional[bool] = ..., task: _Optional[str] = ..., nopeek: _Optional[float] = ..., embedding_dp_releases: _Optional[str] = ..., mid_weight: _Optional[float] = ..., mid_dim: _Optional[int] = ..., embedding_dp_per_user: _Optional[bool] = ..., mid_releases: _Optional[str] = ...) -> None: ...

class PrivacyStatus(_message.Message):
    __slots__ = ("embedding_dp", "epsilon_per_user", "epsilon", "epsilon_per_row", "delta", "label_epsilon", "gradient_defense")
    EMBEDDING_DP_FIELD_NUMBER: _ClassVar[int]
    EPSILON_PER_USER_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    EPSILON_PER_ROW_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    LABEL_EPSILON_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_DEFENSE_FIELD_NUMBER: _ClassVar[int]
    embedding_dp: bool
    epsilon_per_user: float
    epsilon: float
    epsilon_per_row: float
    delta: float
    label_epsilon: float
    gradient_defense: str
    def __init__(self, embedding_dp: _Optional[bool] = ..., epsilon_per_user: _Optional[float] = ..., epsilon: _Optional[float] = ..., epsilon_per_row: _Optional[float] = ..., delta: _Optional[float] = ..., label_epsilon: _Optional[float] = ..., gradient_defense: _Optional[str] = ...) -> None: ...

class PrepareJobRequest(_message.Message):
    __slots__ = ("job", "owner", "attempt")
    JOB_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job: JobSpec
    owner: str
    attempt: str
    def __init__(self, job: _Optional[_Union[JobSpec, _Mapping]] = ..., owner: _Optional[str] = ..., attempt: _Optional[str] = ...) -> None: ...

class PrepareJobReply(_message.Message):
    __slots__ = ("train_rows", "max_user_rows", "validation_rows", "steps_per_epoch", "aligned_rows", "alignment_cached", "warnings")
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    MAX_USER_ROWS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ROWS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    ALIGNED_ROWS_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_CACHED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    train_rows: int
    max_user_rows: int
    validation_rows: int
    steps_per_epoch: int
    aligned_rows: int
    alignment_cached: bool
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, train_rows: _Optional[int] = ..., max_user_rows: _Optional[int] = ..., validation_rows: _Optional[int] = ..., steps_per_epoch: _Optional[int] = ..., aligned_rows: _Optional[int] = ..., alignment_cached: _Optional[bool] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class RunStepsRequest(_message.Message):
    __slots__ = ("job_id", "epoch", "first_step", "num_steps", "report_every", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FIRST_STEP_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    REPORT_EVERY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    epoch: int
    first_step: int
    num_steps: int
    report_every: int
    owner: str
    def __init__(self, job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., first_step: _Optional[int] = ..., num_steps: _Optional[int] = ..., report_every: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ("count", "loss", "auc", "precision", "recall", "tasks")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    AUC_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    count: int
    loss: float
    auc: float
    precision: float
    recall: float
    tasks: _containers.RepeatedCompositeFieldContainer[TaskMetrics]
    def __init__(self, count: _Optional[int] = ..., loss: _Optional[float] = ..., auc: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., tasks: _Optional[_Iterable[_Union[TaskMetrics, _Mapping]]] = ...) -> None: ...

class TaskMetrics(_message.Message):
    __slots__ = ("name", "loss", "auc", "precision", "recall")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    AUC_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    name: str
    loss: float
    auc: float
    precision: float
    recall: float
    def __init__(self, name: _Optional[str] = ..., loss: _Optional[float] = ..., auc: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ...) -> None: ...

class StepProgress(_message.Message):
    __slots__ = ("epoch", "next_step", "samples", "has_metrics", "metrics", "peer_traffic")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NEXT_STEP_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    HAS_METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PEER_TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    next_step: int
    samples: int
    has_metrics: bool
    metrics: Metrics
    peer_traffic: Traffic
    def __init__(self, epoch: _Optional[int] = ..., next_step: _Optional[int] = ..., samples: _Optional[int] = ..., has_metrics: _Optional[bool] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., peer_traffic: _Optional[_Union[Traffic, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("job_id", "epoch", "split", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    epoch: int
    split: _common_pb2.Split
    owner: str
    def __init__(self, job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., split: _Optional[_Union[_common_pb2.Split, str]] = ..., owner: _Optional[str] = ...) -> None: ...

class EvaluateReply(_message.Message):
    __slots__ = ("rows", "has_metrics", "metrics")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    HAS_METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    has_metrics: bool
    metrics: Metrics
    def __init__(self, rows: _Optional[int] = ..., has_metrics: _Optional[bool] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("job_id", "split", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    split: _common_pb2.Split
    owner: str
    def __init__(self, job_id: _Optional[str] = ..., split: _Optional[_Union[_common_pb2.Split, str]] = ..., owner: _Optional[str] = ...) -> None: ...

class PredictReply(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    def __init__(self, rows: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartyStatus(_message.Message):
    __slots__ = ("party", "role", "protocol_version", "job_id", "state", "epoch", "step", "samples_per_second", "has_metrics", "last_metrics", "uptime_seconds", "peer_traffic", "peers", "transport_security", "privacy", "job_owner", "serving", "in_flight_peak", "pipeline_depth")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    HAS_METRICS_FIELD_NUMBER: _ClassVar[int]
    LAST_METRICS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PEER_TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_SECURITY_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    JOB_OWNER_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_PEAK_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    party: str
    role: _common_pb2.Role
    protocol_version: str
    job_id: str
    state: str
    epoch: int
    step: int
    samples_per_second: float
    has_metrics: bool
    last_metrics: Metrics
    uptime_seconds: float
    peer_traffic: Traffic
    peers: _containers.RepeatedCompositeFieldContainer[PeerState]
    transport_security: str
    privacy: PrivacyStatus
    job_owner: str
    serving: _scoring_pb2.ServingStatus
    in_flight_peak: int
    pipeline_depth: int
    def __init__(self, party: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., protocol_version: _Optional[str] = ..., job_id: _Optional[str] = ..., state: _Optional[str] = ..., epoch: _Optional[int] = ..., step: _Optional[int] = ..., samples_per_second: _Optional[float] = ..., has_metrics: _Optional[bool] = ..., last_metrics: _Optional[_Union[Metrics, _Mapping]] = ..., uptime_seconds: _Optional[float] = ..., peer_traffic: _Optional[_Union[Traffic, _Mapping]] = ..., peers: _Optional[_Iterable[_Union[PeerState, _Mapping]]] = ..., transport_security: _Optional[str] = ..., privacy: _Optional[_Union[PrivacyStatus, _Mapping]] = ..., job_owner: _Optional[str] = ..., serving: _Optional[_Union[_scoring_pb2.ServingStatus, _Mapping]] = ..., in_flight_peak: _Optional[int] = ..., pipeline_depth: _Optional[int] = ...) -> None: ...

class PeerState(_message.Message):
    __slots__ = ("name", "address", "identity", "reachable", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    identity: str
    reachable: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., identity: _Optional[str] = ..., reachable: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class Traffic(_message.Message):
    __slots__ = ("bytes_sent", "bytes_received", "messages_sent", "messages_received")
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    def __init__(self, bytes_sent: _Optional[int] = ..., bytes_received: _Optional[int] = ..., messages_sent: _Optional[int] = ..., messages_received: _Optional[int] = ...) -> None: ...

class EndJobRequest(_message.Message):
    __slots__ = ("job_id", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    owner: str
    def __init__(self, job_id: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class EndJobReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SaveCheckpointRequest(_message.Message):
    __slots__ = ("job_id", "checkpoint_id", "epoch", "step", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    checkpoint_id: int
    epoch: int
    step: int
    owner: str
    def __init__(self, job_id: _Optional[str] = ..., checkpoint_id: _Optional[int] = ..., epoch: _Optional[int] = ..., step: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class SaveCheckpointReply(_message.Message):
    __slots__ = ("digest", "bytes")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    digest: str
    bytes: int
    def __init__(self, digest: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...

class RestoreCheckpointRequest(_message.Message):
    __slots__ = ("job_id", "checkpoint_id", "epoch", "step", "digest", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    checkpoint_id: int
    epoch: int
    step: int
    digest: str
    owner: str
    def __init__(self, job_id: _Optional[str] = ..., checkpoint_id: _Optional[int] = ..., epoch: _Optional[int] = ..., step: _Optional[int] = ..., digest: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class RestoreCheckpointReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CommitCheckpointsRequest(_message.Message):
    __slots__ = ("job_id", "keep", "owner")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    keep: _containers.RepeatedScalarFieldContainer[int]
    owner: str
    def __init__(self, job_id: _Optional[str] = ..., keep: _Optional[_Iterable[int]] = ..., owner: _Optional[str] = ...) -> None: ...

class CommitCheckpointsReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportModelRequest(_message.Message):
    __slots__ = ("job_id", "version", "epoch", "has_metrics", "metrics", "owner", "export_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    HAS_METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: str
    epoch: int
    has_metrics: bool
    metrics: Metrics
    owner: str
    export_id: str
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[str] = ..., epoch: _Optional[int] = ..., has_metrics: _Optional[bool] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., owner: _Optional[str] = ..., export_id: _Optional[str] = ...) -> None: ...

class ExportModelReply(_message.Message):
    __slots__ = ("version", "model_digest", "export_id", "files_digest")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_DIGEST_FIELD_NUMBER: _ClassVar[int]
    version: str
    model_digest: str
    export_id: str
    files_digest: str
    def __init__(self, version: _Optional[str] = ..., model_digest: _Optional[str] = ..., export_id: _Optional[str] = ..., files_digest: _Optional[str] = ...) -> None: ...

class SwitchServingRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class SwitchServingReply(_message.Message):
    __slots__ = ("version", "previous", "model_digests")
    class ModelDigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    version: str
    previous: str
    model_digests: _containers.ScalarMap[str, str]
    def __init__(self, version: _Optional[str] = ..., previous: _Optional[str] = ..., model_digests: _Optional[_Mapping[str, str]] = ...) -> None: ...
