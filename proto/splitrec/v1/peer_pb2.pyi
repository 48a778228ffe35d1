from splitrec.v1 import common_pb2 as _common_pb2
from splitrec.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("key", "hidden")
    KEY_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.StepKey
    hidden: _tensor_pb2.Tensor
    def __init__(self, key: _Optional[_Union[_common_pb2.StepKey, _Mapping]] = ..., hidden: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class Backward(_message.Message):
    __slots__ = ("key", "gradient")
    KEY_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.StepKey
    gradient: _tensor_pb2.Tensor
    def __init__(self, key: _Optional[_Union[_common_pb2.StepKey, _Mapping]] = ..., gradient: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class PeerMessage(_message.Message):
    __slots__ = ("hello", "forward", "backward")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    forward: Forward
    backward: Backward
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., forward: _Optional[_Union[Forward, _Mapping]] = ..., backward: _Optional[_Union[Backward, _Mapping]] = ...) -> None: ...
