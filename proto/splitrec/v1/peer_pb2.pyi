from splitrec.v1 import common_pb2 as _common_pb2
from splitrec.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PsiStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PSI_STAGE_UNSPECIFIED: _ClassVar[PsiStage]
    PSI_STAGE_BLINDED: _ClassVar[PsiStage]
    PSI_STAGE_DOUBLE_BLINDED: _ClassVar[PsiStage]
    PSI_STAGE_ALIGNED: _ClassVar[PsiStage]
PSI_STAGE_UNSPECIFIED: PsiStage
PSI_STAGE_BLINDED: PsiStage
PSI_STAGE_DOUBLE_BLINDED: PsiStage
PSI_STAGE_ALIGNED: PsiStage

class PushRequest(_message.Message):
    __slots__ = ("job_id", "version", "party")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: str
    party: str
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[str] = ..., party: _Optional[str] = ...) -> None: ...

class ExportIdentity(_message.Message):
    __slots__ = ("job_id", "version", "epoch", "export_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: str
    epoch: int
    export_id: str
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[str] = ..., epoch: _Optional[int] = ..., export_id: _Optional[str] = ...) -> None: ...

class PushChunk(_message.Message):
    __slots__ = ("model_digest", "table_digest", "keys", "outputs", "export")
    MODEL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TABLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_FIELD_NUMBER: _ClassVar[int]
    model_digest: str
    table_digest: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    outputs: _tensor_pb2.Tensor
    export: ExportIdentity
    def __init__(self, model_digest: _Optional[str] = ..., table_digest: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., outputs: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., export: _Optional[_Union[ExportIdentity, _Mapping]] = ...) -> None: ...

class PrepareServingRequest(_message.Message):
    __slots__ = ("job_id", "version", "party")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: str
    party: str
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[str] = ..., party: _Optional[str] = ...) -> None: ...

class PrepareServingResponse(_message.Message):
    __slots__ = ("model_digest", "entities", "export")
    MODEL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    EXPORT_FIELD_NUMBER: _ClassVar[int]
    model_digest: str
    entities: int
    export: ExportIdentity
    def __init__(self, model_digest: _Optional[str] = ..., entities: _Optional[int] = ..., export: _Optional[_Union[ExportIdentity, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("job_id", "version", "party", "keys")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: str
    party: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[str] = ..., party: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("model_digest", "table_digest", "outputs", "unknown", "export")
    MODEL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TABLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    EXPORT_FIELD_NUMBER: _ClassVar[int]
    model_digest: str
    table_digest: str
    outputs: _tensor_pb2.Tensor
    unknown: _containers.RepeatedScalarFieldContainer[int]
    export: ExportIdentity
    def __init__(self, model_digest: _Optional[str] = ..., table_digest: _Optional[str] = ..., outputs: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., unknown: _Optional[_Iterable[int]] = ..., export: _Optional[_Union[ExportIdentity, _Mapping]] = ...) -> None: ...

class PsiHello(_message.Message):
    __slots__ = ("job_id", "party", "count", "id_digest", "cache_key", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ID_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CACHE_KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    party: str
    count: int
    id_digest: str
    cache_key: str
    attempt: str
    def __init__(self, job_id: _Optional[str] = ..., party: _Optional[str] = ..., count: _Optional[int] = ..., id_digest: _Optional[str] = ..., cache_key: _Optional[str] = ..., attempt: _Optional[str] = ...) -> None: ...

class PsiCache(_message.Message):
    __slots__ = ("has_cache", "use_cache")
    HAS_CACHE_FIELD_NUMBER: _ClassVar[int]
    USE_CACHE_FIELD_NUMBER: _ClassVar[int]
    has_cache: bool
    use_cache: bool
    def __init__(self, has_cache: _Optional[bool] = ..., use_cache: _Optional[bool] = ...) -> None: ...

class PsiValues(_message.Message):
    __slots__ = ("stage", "width", "values", "last")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    stage: PsiStage
    width: int
    values: bytes
    last: bool
    def __init__(self, stage: _Optional[_Union[PsiStage, str]] = ..., width: _Optional[int] = ..., values: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class PsiDone(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    def __init__(self, rows: _Optional[int] = ...) -> None: ...

class PsiMessage(_message.Message):
    __slots__ = ("hello", "cache", "values", "done")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    hello: PsiHello
    cache: PsiCache
    values: PsiValues
    done: PsiDone
    def __init__(self, hello: _Optional[_Union[PsiHello, _Mapping]] = ..., cache: _Optional[_Union[PsiCache, _Mapping]] = ..., values: _Optional[_Union[PsiValues, _Mapping]] = ..., done: _Optional[_Union[PsiDone, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("job_id", "party", "phase", "split")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    party: str
    phase: _common_pb2.Phase
    split: _common_pb2.Split
    def __init__(self, job_id: _Optional[str] = ..., party: _Optional[str] = ..., phase: _Optional[_Union[_common_pb2.Phase, str]] = ..., split: _Optional[_Union[_common_pb2.Split, str]] = ...) -> None: ...

class Forward(_message.Message):
    __slots__ = ("key", "hidden", "compressed", "masked")
    KEY_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.StepKey
    hidden: _tensor_pb2.Tensor
    compressed: _tensor_pb2.CompressedTensor
    masked: MaskedTensor
    def __init__(self, key: _Optional[_Union[_common_pb2.StepKey, _Mapping]] = ..., hidden: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., compressed: _Optional[_Union[_tensor_pb2.CompressedTensor, _Mapping]] = ..., masked: _Optional[_Union[MaskedTensor, _Mapping]] = ...) -> None: ...

class MaskedTensor(_message.Message):
    __slots__ = ("values", "keys")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    values: _tensor_pb2.Tensor
    keys: bytes
    def __init__(self, values: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., keys: _Optional[bytes] = ...) -> None: ...

class KeyShare(_message.Message):
    __slots__ = ("job_id", "party", "public_key", "certificate", "signature")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    party: str
    public_key: bytes
    certificate: bytes
    signature: bytes
    def __init__(self, job_id: _Optional[str] = ..., party: _Optional[str] = ..., public_key: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class KeyShares(_message.Message):
    __slots__ = ("shares",)
    SHARES_FIELD_NUMBER: _ClassVar[int]
    shares: _containers.RepeatedCompositeFieldContainer[KeyShare]
    def __init__(self, shares: _Optional[_Iterable[_Union[KeyShare, _Mapping]]] = ...) -> None: ...

class Backward(_message.Message):
    __slots__ = ("key", "gradient", "compressed", "held_micros", "compute_micros")
    KEY_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    HELD_MICROS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MICROS_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.StepKey
    gradient: _tensor_pb2.Tensor
    compressed: _tensor_pb2.CompressedTensor
    held_micros: int
    compute_micros: int
    def __init__(self, key: _Optional[_Union[_common_pb2.StepKey, _Mapping]] = ..., gradient: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., compressed: _Optional[_Union[_tensor_pb2.CompressedTensor, _Mapping]] = ..., held_micros: _Optional[int] = ..., compute_micros: _Optional[int] = ...) -> None: ...

class PeerMessage(_message.Message):
    __slots__ = ("hello", "forward", "backward", "key_share", "key_shares")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    KEY_SHARE_FIELD_NUMBER: _ClassVar[int]
    KEY_SHARES_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    forward: Forward
    backward: Backward
    key_share: KeyShare
    key_shares: KeyShares
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., forward: _Optional[_Union[Forward, _Mapping]] = ..., backward: _Optional[_Union[Backward, _Mapping]] = ..., key_share: _Optional[_Union[KeyShare, _Mapping]] = ..., key_shares: _Optional[_Union[KeyShares, _Mapping]] = ...) -> None: ...
