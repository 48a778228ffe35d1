from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntityKeys(_message.Message):
    __slots__ = ("party", "keys")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    party: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, party: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("entities",)
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[EntityKeys]
    def __init__(self, entities: _Optional[_Iterable[_Union[EntityKeys, _Mapping]]] = ...) -> None: ...

class RowScore(_message.Message):
    __slots__ = ("scores", "problem")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    problem: str
    def __init__(self, scores: _Optional[_Iterable[float]] = ..., problem: _Optional[str] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("version", "tasks", "rows", "cached", "fetched")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    FETCHED_FIELD_NUMBER: _ClassVar[int]
    version: str
    tasks: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[RowScore]
    cached: int
    fetched: int
    def __init__(self, version: _Optional[str] = ..., tasks: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[RowScore, _Mapping]]] = ..., cached: _Optional[int] = ..., fetched: _Optional[int] = ...) -> None: ...

class ServingStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartServing(_message.Message):
    __slots__ = ("party", "model_digest", "key_column", "entities", "table_digest", "export_id", "epoch")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    MODEL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    KEY_COLUMN_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    TABLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    party: str
    model_digest: str
    key_column: str
    entities: int
    table_digest: str
    export_id: str
    epoch: int
    def __init__(self, party: _Optional[str] = ..., model_digest: _Optional[str] = ..., key_column: _Optional[str] = ..., entities: _Optional[int] = ..., table_digest: _Optional[str] = ..., export_id: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class KeptOut(_message.Message):
    __slots__ = ("kind", "name", "reason")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    reason: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ServingStatus(_message.Message):
    __slots__ = ("ready", "problem", "job", "version", "tasks", "parts", "cached_outputs", "kept_out")
    READY_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    CACHED_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    KEPT_OUT_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    problem: str
    job: str
    version: str
    tasks: _containers.RepeatedScalarFieldContainer[str]
    parts: _containers.RepeatedCompositeFieldContainer[PartServing]
    cached_outputs: int
    kept_out: _containers.RepeatedCompositeFieldContainer[KeptOut]
    def __init__(self, ready: _Optional[bool] = ..., problem: _Optional[str] = ..., job: _Optional[str] = ..., version: _Optional[str] = ..., tasks: _Optional[_Iterable[str]] = ..., parts: _Optional[_Iterable[_Union[PartServing, _Mapping]]] = ..., cached_outputs: _Optional[int] = ..., kept_out: _Optional[_Iterable[_Union[KeptOut, _Mapping]]] = ...) -> None: ...
