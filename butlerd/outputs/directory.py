"""The ``directory`` output: streams as files, laid out exactly as the Go Butler does.

For stream ``dir/part/leaf`` under the output path:

* ``dir/part/.meta.leaf``: the descriptor as golang/protobuf v1 ``jsonpb``
  (original field names, two-space indent, unset fields omitted, enum names,
  Go ``encoding/json`` string escaping), no trailing newline. Written when
  the stream first appears in a bundle (empty streams never do).
* ``dir/part/leaf``: text lines, each followed by one ``"\\n"`` whatever its
  delimiter (``\\r\\n`` becomes ``\\n``; a partial fragment gets one too, as in
  Go), or the binary bytes.
* ``dir/part/_NNNNN.leaf``: one file per datagram (``%05d`` of its index),
  fragments appended, closed once complete.

Directories are created 0750. A file error stops the rest of the bundle
(Go returns the error from ``SendBundle``; the pump logs it). Writes are
synchronous, straight to the OS like Go's ``os.File.Write``, so a reader of
the directory sees each bundle as soon as it is handled.

The meta JSON is produced here rather than by ``google.protobuf.json_format``:
that library escapes differently from Go's ``encoding/json`` (``<``, ``>``,
``&``, U+2028/2029, non-ASCII) and formats maps and enums its own way.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

from wire.descriptor import StreamDescriptor
from wire.goquote import go_json_string
from wire.timefmt import format_proto_json_timestamp
from wire.types import StreamType

from butlerd._events import (
    BinaryContent,
    Bundle,
    BundleEntry,
    DatagramContent,
    LogEntry,
    TextContent,
)
from butlerd._nestedflags import FlagSet
from butlerd.outputs import OutputConfigError, OutputFactory
from butlerd.outputs.base import Output, OutputConfig, OutputStats

__all__ = ["DirectoryOutput", "DirectoryFactory", "descriptor_json"]

_DIR_MODE = 0o750

def descriptor_json(desc: StreamDescriptor) -> str:
    """The descriptor as the Go directory output writes ``.meta.<leaf>``
    (``jsonpb.Marshaler{Indent: "  ", OrigName: true}``)."""
    fields: list[str] = []
    if desc.prefix:
        fields.append(f'  "prefix": {go_json_string(desc.prefix)}')
    if desc.name:
        fields.append(f'  "name": {go_json_string(desc.name)}')
    stype = int(desc.stream_type)
    if stype:
        try:
            fields.append(f'  "stream_type": "{StreamType(stype).name}"')
        except ValueError:
            fields.append(f'  "stream_type": {stype}')
    if desc.content_type:
        fields.append(f'  "content_type": {go_json_string(desc.content_type)}')
    if desc.timestamp_ns is not None:
        fields.append(f'  "timestamp": "{format_proto_json_timestamp(desc.timestamp_ns)}"')
    if desc.tags:
        tags = ",\n".join(
            f"    {go_json_string(k)}: {go_json_string(desc.tags[k])}" for k in sorted(desc.tags)
        )
        fields.append(f'  "tags": {{\n{tags}\n  }}')
    if desc.binary_file_ext:
        fields.append(f'  "binary_file_ext": {go_json_string(desc.binary_file_ext)}')
    return "{\n" + ",\n".join(fields) + "\n}"


# --- files -----------------------------------------------------------------------


def _makedirs(path: str) -> None:
    """``mkdir -p`` with 0750 on every created level (os.makedirs applies the
    mode to the leaf only); errors are ignored, as in Go."""
    if not path or os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip("/"))
    if parent and parent != path:
        _makedirs(parent)
    try:
        os.mkdir(path, _DIR_MODE)
    except OSError:
        pass


def _create(path: str) -> int:
    """Go ``os.Create``: truncate or create with 0666 (less umask)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)


#: Most buffers one writev() takes (POSIX IOV_MAX is at least 16; Linux's is 1024).
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


def _write_many(fd: int, pieces: list[bytes]) -> None:
    """Write ``pieces`` in order with as few system calls as possible, without
    joining them into one more copy of the bundle."""
    for i in range(0, len(pieces), _IOV_MAX):
        batch = [p for p in pieces[i : i + _IOV_MAX] if p]
        total = sum(map(len, batch))
        n = os.writev(fd, batch) if batch else 0
        if n == total:
            continue
        # A short write: finish this batch piece by piece.
        for piece in batch:
            if n >= len(piece):
                n -= len(piece)
                continue
            _write_all(fd, memoryview(piece)[n:])
            n = 0


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Go ``File.Write``: keep writing until all of ``data`` is out."""
    if not data:
        return
    n = os.write(fd, data)
    if n == len(data):
        return
    view = memoryview(data)[n:]
    while view:
        n = os.write(fd, view)
        view = view[n:]


class DirectoryOutputError(OSError):
    """A file operation failed; the rest of the bundle was not written."""


def _file_bytes(le: LogEntry) -> bytes:
    """What Go writes for one text or binary LogEntry."""
    content = le.content
    if isinstance(content, TextContent):
        # Go writes each line's value plus "\n", whatever the delimiter was,
        # and gives a partial fragment a "\n" too: that is the raw data with
        # "\r\n" -> "\n", plus one "\n" if it does not end with one.
        data = content.data
        if b"\r\n" in data:
            data = data.replace(b"\r\n", b"\n")
        if data and not data.endswith(b"\n"):
            data += b"\n"
        return data
    return content.data


class _Stream:
    """The open file of one stream (Go ``directory.stream``)."""

    __slots__ = ("base", "leaf", "name", "is_datagram", "datagram_count", "fd", "_datagram_prefix")

    def __init__(self, root: str, desc: StreamDescriptor) -> None:
        rel = posixpath.normpath(desc.name)
        subdir, self.leaf = posixpath.split(rel)
        self.name = rel
        self.base = os.path.join(root, subdir) if subdir else root
        self.is_datagram = int(desc.stream_type) == StreamType.DATAGRAM
        self.datagram_count = 0
        self.fd: int | None = None
        self._datagram_prefix = os.path.join(self.base, "_")

        _makedirs(self.base)
        try:
            meta = _create(os.path.join(self.base, ".meta." + self.leaf))
        except OSError as e:
            raise DirectoryOutputError(f"opening meta file for {rel}: {e}") from e
        try:
            _write_all(meta, descriptor_json(desc).encode("utf-8", "surrogatepass"))
        except OSError as e:
            raise DirectoryOutputError(f"writing meta file for {rel}: {e}") from e
        finally:
            os.close(meta)
        if not self.is_datagram:
            try:
                self.fd = _create(os.path.join(self.base, self.leaf))
            except OSError as e:
                raise DirectoryOutputError(f"opening data file for {rel}: {e}") from e

    def _current(self) -> int:
        if self.fd is not None:
            return self.fd
        if not self.is_datagram:
            raise DirectoryOutputError(
                "cannot call getCurFile for a non-datagram with a closed file"
            )
        path = f"{self._datagram_prefix}{self.datagram_count:05d}.{self.leaf}"
        try:
            self.fd = _create(path)
        except OSError as e:
            raise DirectoryOutputError(
                f"could not open {self.datagram_count}'th datagram of "
                f"{os.path.join(self.base, self.leaf)}: {e}",
            ) from e
        self.datagram_count += 1
        return self.fd

    def ingest(self, be: BundleEntry) -> bool:
        """Write one bundle entry's logs; True when the stream is finished."""
        if not self.is_datagram and be.logs:
            # One writev per bundle entry: the bytes of Go's write per
            # line, a fraction of the system calls, and no joined copy.
            pieces: list[bytes] = []
            for le in be.logs:
                content = le.content
                if isinstance(content, BinaryContent):
                    pieces += content.parts
                else:
                    pieces.append(_file_bytes(le))
            _write_many(self._current(), pieces)
            if be.terminal:
                self.close()
            return be.terminal
        for le in be.logs:
            content = le.content
            if not isinstance(content, DatagramContent):
                _write_all(self._current(), _file_bytes(le))
                continue
            if content.partial is None and self.fd is None:
                self._write_whole_datagram(content.data)  # the common case, inline
                continue
            _write_all(self._current(), content.data)
            if content.partial is None or content.partial.last:
                self.close()
        if be.terminal:
            self.close()
            return True
        return False

    def _write_whole_datagram(self, data: bytes) -> None:
        """``_current`` + write + ``close`` for one complete datagram, in one call."""
        fd = self._current()
        self.fd = None
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class DirectoryOutput(Output):
    """Writes every stream under ``path``; see the module docstring."""

    max_size = 1 << 30
    max_send_bundles = 1

    def __init__(self, path: str) -> None:
        self.path = path
        self._streams: dict[str, _Stream] = {}

    async def send_bundle(self, bundle: Bundle) -> None:
        self.write_bundle(bundle)

    def write_bundle(self, bundle: Bundle) -> None:
        """Synchronous ``send_bundle``; raises on the first file error."""
        streams = self._streams
        for be in bundle.entries:
            desc = be.desc
            key = f"{desc.prefix}/+/{desc.name}"
            stream = streams.get(key)
            if stream is None:
                stream = _Stream(self.path, desc)
                streams[key] = stream
            if stream.ingest(be):
                del streams[key]

    def stats(self) -> OutputStats:
        return OutputStats()  # Go's directory output keeps none

    async def close(self) -> None:
        self.close_files()

    def close_files(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()

    def url_env(self) -> dict[str, str]:
        return {"LOGDOG_COORDINATOR_HOST": "file://" + self.path}


class DirectoryFactory(OutputFactory):
    description = "Debug output that writes stream data to multiple files."

    def add_flags(self, flags: FlagSet) -> None:
        flags.string("path", "")

    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        path = options["path"]
        if not path:
            raise OutputConfigError("missing required output path")
        return DirectoryOutput(path)
