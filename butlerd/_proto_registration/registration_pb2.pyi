import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterPrefixRequest(_message.Message):
    __slots__ = ("project", "prefix", "realm", "source_info", "op_nonce", "expiration")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    REALM_FIELD_NUMBER: _ClassVar[int]
    SOURCE_INFO_FIELD_NUMBER: _ClassVar[int]
    OP_NONCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    project: str
    prefix: str
    realm: str
    source_info: _containers.RepeatedScalarFieldContainer[str]
    op_nonce: bytes
    expiration: _duration_pb2.Duration
    def __init__(self, project: _Optional[str] = ..., prefix: _Optional[str] = ..., realm: _Optional[str] = ..., source_info: _Optional[_Iterable[str]] = ..., op_nonce: _Optional[bytes] = ..., expiration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RegisterPrefixResponse(_message.Message):
    __slots__ = ("secret", "log_bundle_topic")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    LOG_BUNDLE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    secret: bytes
    log_bundle_topic: str
    def __init__(self, secret: _Optional[bytes] = ..., log_bundle_topic: _Optional[str] = ...) -> None: ...
