import datetime

from wire.logpb import log_pb2 as _log_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ButlerMetadata(_message.Message):
    __slots__ = ("type", "compression", "proto_version")
    class ContentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        Invalid: _ClassVar[ButlerMetadata.ContentType]
        ButlerLogBundle: _ClassVar[ButlerMetadata.ContentType]
    Invalid: ButlerMetadata.ContentType
    ButlerLogBundle: ButlerMetadata.ContentType
    class Compression(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NONE: _ClassVar[ButlerMetadata.Compression]
        ZLIB: _ClassVar[ButlerMetadata.Compression]
    NONE: ButlerMetadata.Compression
    ZLIB: ButlerMetadata.Compression
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    PROTO_VERSION_FIELD_NUMBER: _ClassVar[int]
    type: ButlerMetadata.ContentType
    compression: ButlerMetadata.Compression
    proto_version: str
    def __init__(self, type: _Optional[_Union[ButlerMetadata.ContentType, str]] = ..., compression: _Optional[_Union[ButlerMetadata.Compression, str]] = ..., proto_version: _Optional[str] = ...) -> None: ...

class ButlerLogBundle(_message.Message):
    __slots__ = ("deprecated_source", "timestamp", "entries", "project", "prefix", "secret")
    class Entry(_message.Message):
        __slots__ = ("desc", "deprecated_entry_secret", "terminal", "terminal_index", "logs")
        DESC_FIELD_NUMBER: _ClassVar[int]
        DEPRECATED_ENTRY_SECRET_FIELD_NUMBER: _ClassVar[int]
        TERMINAL_FIELD_NUMBER: _ClassVar[int]
        TERMINAL_INDEX_FIELD_NUMBER: _ClassVar[int]
        LOGS_FIELD_NUMBER: _ClassVar[int]
        desc: _log_pb2.LogStreamDescriptor
        deprecated_entry_secret: bytes
        terminal: bool
        terminal_index: int
        logs: _containers.RepeatedCompositeFieldContainer[_log_pb2.LogEntry]
        def __init__(self, desc: _Optional[_Union[_log_pb2.LogStreamDescriptor, _Mapping]] = ..., deprecated_entry_secret: _Optional[bytes] = ..., terminal: _Optional[bool] = ..., terminal_index: _Optional[int] = ..., logs: _Optional[_Iterable[_Union[_log_pb2.LogEntry, _Mapping]]] = ...) -> None: ...
    DEPRECATED_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    deprecated_source: str
    timestamp: _timestamp_pb2.Timestamp
    entries: _containers.RepeatedCompositeFieldContainer[ButlerLogBundle.Entry]
    project: str
    prefix: str
    secret: bytes
    def __init__(self, deprecated_source: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[ButlerLogBundle.Entry, _Mapping]]] = ..., project: _Optional[str] = ..., prefix: _Optional[str] = ..., secret: _Optional[bytes] = ...) -> None: ...
