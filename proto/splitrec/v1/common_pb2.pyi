from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_FEATURE: _ClassVar[Role]
    ROLE_LABEL: _ClassVar[Role]

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_TRAIN: _ClassVar[Phase]
    PHASE_EVALUATE: _ClassVar[Phase]
    PHASE_PREDICT: _ClassVar[Phase]

class Split(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPLIT_UNSPECIFIED: _ClassVar[Split]
    SPLIT_TRAIN: _ClassVar[Split]
    SPLIT_VALIDATION: _ClassVar[Split]
    SPLIT_ALL: _ClassVar[Split]
ROLE_UNSPECIFIED: Role
ROLE_FEATURE: Role
ROLE_LABEL: Role
PHASE_UNSPECIFIED: Phase
PHASE_TRAIN: Phase
PHASE_EVALUATE: Phase
PHASE_PREDICT: Phase
SPLIT_UNSPECIFIED: Split
SPLIT_TRAIN: Split
SPLIT_VALIDATION: Split
SPLIT_ALL: Split

class StepKey(_message.Message):
    __slots__ = ("job_id", "phase", "epoch", "step")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    phase: Phase
    epoch: int
    step: int
    def __init__(self, job_id: _Optional[str] = ..., phase: _Optional[_Union[Phase, str]] = ..., epoch: _Optional[int] = ..., step: _Optional[int] = ...) -> None: ...

class OutputPart(_message.Message):
    __slots__ = ("name", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class OutputSpec(_message.Message):
    __slots__ = ("family", "parts", "structure")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_FIELD_NUMBER: _ClassVar[int]
    family: str
    parts: _containers.RepeatedCompositeFieldContainer[OutputPart]
    structure: str
    def __init__(self, family: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[OutputPart, _Mapping]]] = ..., structure: _Optional[str] = ...) -> None: ...
