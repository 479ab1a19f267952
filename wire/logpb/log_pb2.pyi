import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEXT: _ClassVar[StreamType]
    BINARY: _ClassVar[StreamType]
    DATAGRAM: _ClassVar[StreamType]
TEXT: StreamType
BINARY: StreamType
DATAGRAM: StreamType

class LogStreamDescriptor(_message.Message):
    __slots__ = ("prefix", "name", "stream_type", "content_type", "timestamp", "tags", "binary_file_ext")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STREAM_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    BINARY_FILE_EXT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    name: str
    stream_type: StreamType
    content_type: str
    timestamp: _timestamp_pb2.Timestamp
    tags: _containers.ScalarMap[str, str]
    binary_file_ext: str
    def __init__(self, prefix: _Optional[str] = ..., name: _Optional[str] = ..., stream_type: _Optional[_Union[StreamType, str]] = ..., content_type: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., binary_file_ext: _Optional[str] = ...) -> None: ...

class Text(_message.Message):
    __slots__ = ("lines",)
    class Line(_message.Message):
        __slots__ = ("value", "delimiter")
        VALUE_FIELD_NUMBER: _ClassVar[int]
        DELIMITER_FIELD_NUMBER: _ClassVar[int]
        value: bytes
        delimiter: str
        def __init__(self, value: _Optional[bytes] = ..., delimiter: _Optional[str] = ...) -> None: ...
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[Text.Line]
    def __init__(self, lines: _Optional[_Iterable[_Union[Text.Line, _Mapping]]] = ...) -> None: ...

class Binary(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class Datagram(_message.Message):
    __slots__ = ("data", "partial")
    class Partial(_message.Message):
        __slots__ = ("index", "size", "last")
        INDEX_FIELD_NUMBER: _ClassVar[int]
        SIZE_FIELD_NUMBER: _ClassVar[int]
        LAST_FIELD_NUMBER: _ClassVar[int]
        index: int
        size: int
        last: bool
        def __init__(self, index: _Optional[int] = ..., size: _Optional[int] = ..., last: _Optional[bool] = ...) -> None: ...
    DATA_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    partial: Datagram.Partial
    def __init__(self, data: _Optional[bytes] = ..., partial: _Optional[_Union[Datagram.Partial, _Mapping]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("time_offset", "prefix_index", "stream_index", "sequence", "text", "binary", "datagram")
    TIME_OFFSET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_INDEX_FIELD_NUMBER: _ClassVar[int]
    STREAM_INDEX_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    DATAGRAM_FIELD_NUMBER: _ClassVar[int]
    time_offset: _duration_pb2.Duration
    prefix_index: int
    stream_index: int
    sequence: int
    text: Text
    binary: Binary
    datagram: Datagram
    def __init__(self, time_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., prefix_index: _Optional[int] = ..., stream_index: _Optional[int] = ..., sequence: _Optional[int] = ..., text: _Optional[_Union[Text, _Mapping]] = ..., binary: _Optional[_Union[Binary, _Mapping]] = ..., datagram: _Optional[_Union[Datagram, _Mapping]] = ...) -> None: ...

class LogIndex(_message.Message):
    __slots__ = ("desc", "entries", "last_prefix_index", "last_stream_index", "log_entry_count")
    class Entry(_message.Message):
        __slots__ = ("offset", "sequence", "prefix_index", "stream_index", "time_offset")
        OFFSET_FIELD_NUMBER: _ClassVar[int]
        SEQUENCE_FIELD_NUMBER: _ClassVar[int]
        PREFIX_INDEX_FIELD_NUMBER: _ClassVar[int]
        STREAM_INDEX_FIELD_NUMBER: _ClassVar[int]
        TIME_OFFSET_FIELD_NUMBER: _ClassVar[int]
        offset: int
        sequence: int
        prefix_index: int
        stream_index: int
        time_offset: _duration_pb2.Duration
        def __init__(self, offset: _Optional[int] = ..., sequence: _Optional[int] = ..., prefix_index: _Optional[int] = ..., stream_index: _Optional[int] = ..., time_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
    DESC_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LAST_PREFIX_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_STREAM_INDEX_FIELD_NUMBER: _ClassVar[int]
    LOG_ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    desc: LogStreamDescriptor
    entries: _containers.RepeatedCompositeFieldContainer[LogIndex.Entry]
    last_prefix_index: int
    last_stream_index: int
    log_entry_count: int
    def __init__(self, desc: _Optional[_Union[LogStreamDescriptor, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[LogIndex.Entry, _Mapping]]] = ..., last_prefix_index: _Optional[int] = ..., last_stream_index: _Optional[int] = ..., log_entry_count: _Optional[int] = ...) -> None: ...
