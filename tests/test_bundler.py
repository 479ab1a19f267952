"""The sans-IO bundler: rounds, indices, terminals, buffering modes, flushing."""

from __future__ import annotations

from butlerd._bundler import Bundler, BundleBuilder, Finished, SendBundle, WaitUntil
from butlerd._events import BinaryContent, DatagramContent, LogEntry, TextContent
from wire.descriptor import StreamDescriptor
from wire.types import StreamType

S = 1_000_000_000
T0 = 1_700_000_000 * S


def desc(name: str, stype: StreamType = StreamType.TEXT, ts: int = T0) -> StreamDescriptor:
    ct = {StreamType.TEXT: "text/plain; charset=utf-8", StreamType.BINARY: "application/octet-stream",
          StreamType.DATAGRAM: "application/x-logdog-datagram"}[stype]
    return StreamDescriptor(name, stype, ct, ts, {})


def poll_all(b: Bundler, now: int) -> list:
    """Poll until the bundler waits or finishes; return the bundles sent."""
    out = []
    while True:
        r = b.poll(now)
        if isinstance(r, SendBundle):
            out.append(r.bundle)
            continue
        if isinstance(r, Finished):
            if r.bundle is not None:
                out.append(r.bundle)
        return out


def logs_of(bundles, name):
    return [l for bd in bundles for e in bd.entries if e.desc.name == name for l in e.logs]


class TestUnbuffered:
    def test_each_poll_sends_what_arrived(self):
        b = Bundler(1 << 30, 0)
        s = b.register(desc("a"))
        s.append(b"one\ntw", T0)
        [bundle] = poll_all(b, T0)
        [entry] = bundle.entries
        assert [l.content.data for l in entry.logs] == [b"one\ntw"]  # partial goes out at once
        assert not entry.terminal

    def test_indices_and_terminal(self):
        b = Bundler(1 << 30, 0)
        a, c = b.register(desc("a")), b.register(desc("c"))
        a.append(b"1\n", T0)
        c.append(b"x\n", T0 + 1)
        first = poll_all(b, T0 + 2)
        a.append(b"2\n", T0 + 3)
        a.close()
        c.close()
        second = poll_all(b, T0 + 4)
        bundles = first + second
        a_logs = logs_of(bundles, "a")
        assert [l.stream_index for l in a_logs] == [0, 1]
        assert [l.sequence for l in a_logs] == [0, 1]
        prefix = sorted(l.prefix_index for bd in bundles for e in bd.entries for l in e.logs)
        assert prefix == [0, 1, 2]
        terminals = {e.desc.name: e.terminal_index for bd in bundles for e in bd.entries if e.terminal}
        assert terminals == {"a": 1, "c": 0}
        assert b.streams == {}

    def test_entries_sorted_by_name(self):
        b = Bundler(1 << 30, 0)
        for name in ("zeta", "alpha", "Mid", "beta/x"):
            b.register(desc(name)).append(b"x\n", T0)
        [bundle] = poll_all(b, T0)
        assert [e.desc.name for e in bundle.entries] == ["Mid", "alpha", "beta/x", "zeta"]

    def test_empty_stream_never_appears(self):
        b = Bundler(1 << 30, 0)
        b.register(desc("empty")).close()
        b.flush()
        assert poll_all(b, T0) == []
        assert b.finished

    def test_time_offsets_never_go_backwards(self):
        b = Bundler(1 << 30, 0)
        s = b.register(desc("a", ts=T0))
        s.append(b"late\n", T0 + 5 * S)
        poll_all(b, T0 + 5 * S)
        s.append(b"early\n", T0 + 1 * S)
        [bundle] = poll_all(b, T0 + 6 * S)
        assert bundle.entries[0].logs[0].time_offset_ns == 5 * S

    def test_descriptor_prefix_is_cleared(self):
        b = Bundler(1 << 30, 0)
        d = desc("a")
        d.prefix = "some/prefix"
        b.register(d).append(b"x\n", T0)
        [bundle] = poll_all(b, T0)
        assert bundle.entries[0].desc.prefix == ""


class TestBuffered:
    def test_complete_lines_wait_for_the_bundle_age(self):
        b = Bundler(1 << 30, 5 * S)
        s = b.register(desc("a"))
        s.append(b"line\npart", T0)
        assert poll_all(b, T0) == []
        r = b.poll(T0 + S)
        assert isinstance(r, WaitUntil) and r.deadline_ns == T0 + 5 * S
        [bundle] = poll_all(b, T0 + 5 * S)
        # At expiry the stream is served aggressively: the partial goes too.
        assert [l.content.data for l in bundle.entries[0].logs] == [b"line\n", b"part"]

    def test_partial_line_waits_until_expiry(self):
        b = Bundler(1 << 30, 5 * S)
        s = b.register(desc("a"))
        s.append(b"partial", T0)
        assert poll_all(b, T0 + 4 * S) == []
        [bundle] = poll_all(b, T0 + 5 * S)
        assert bundle.entries[0].logs[0].content == TextContent(b"partial")

    def test_full_bundle_goes_at_once(self):
        b = Bundler(150, 5 * S)
        s = b.register(desc("a"))
        s.append(b"x" * 100 + b"\n" + b"y" * 100 + b"\n", T0)
        bundles = poll_all(b, T0)
        assert len(bundles) >= 1
        assert logs_of(bundles, "a")[0].content.data == b"x" * 100 + b"\n"

    def test_flush_emits_everything_and_terminates(self):
        b = Bundler(1 << 30, 5 * S)
        t = b.register(desc("t"))
        d = b.register(desc("d", StreamType.DATAGRAM))
        bi = b.register(desc("b", StreamType.BINARY))
        t.append(b"a\nb", T0)
        d.append(b"\x03ab", T0)  # a datagram cut short
        bi.append(b"\x00" * 10, T0)
        for s in (t, d, bi):
            s.close()
        b.flush()
        bundles = poll_all(b, T0)
        assert b.finished
        assert [l.content for l in logs_of(bundles, "t")] == [TextContent(b"a\nb")]
        [frag] = logs_of(bundles, "d")
        assert frag.content.data == b"ab" and frag.content.partial.last is False
        assert logs_of(bundles, "b")[0].content == BinaryContent(b"\x00" * 10)
        assert all(e.terminal for bd in bundles for e in bd.entries)


class TestFixedGoHangs:
    def test_invalid_utf8_tail_does_not_block_flush(self):
        b = Bundler(1 << 30, 5 * S)
        s = b.register(desc("a"))
        s.append(b"abc\xff", T0)
        s.close()
        b.flush()
        bundles = poll_all(b, T0)
        assert b.finished
        assert [l.content.data for l in logs_of(bundles, "a")] == [b"abc"]
        assert s.dropped_bytes == 1

    def test_incomplete_datagram_header_does_not_block_flush(self):
        b = Bundler(1 << 30, 5 * S)
        s = b.register(desc("d", StreamType.DATAGRAM))
        s.append(b"\x02hi\x80", T0)
        s.close()
        b.flush()
        bundles = poll_all(b, T0)
        assert b.finished
        assert [l.content for l in logs_of(bundles, "d")] == [DatagramContent(b"hi")]

    def test_oversized_datagram_ends_only_that_stream_keeping_earlier_data(self):
        b = Bundler(1 << 30, 0)
        bad = b.register(desc("bad", StreamType.DATAGRAM))
        good = b.register(desc("good"))
        bad.append(b"\x02ok" + b"\xff\xff\xff\xff\x01", T0)  # second header > 10 MiB
        good.append(b"fine\n", T0)
        bundles = poll_all(b, T0)
        assert [l.content for l in logs_of(bundles, "bad")] == [DatagramContent(b"ok")]
        assert bad.error is not None and bad.drained
        [bad_entry] = [e for bd in bundles for e in bd.entries if e.desc.name == "bad"]
        assert bad_entry.terminal and bad_entry.terminal_index == 0
        assert [l.content.data for l in logs_of(bundles, "good")] == [b"fine\n"]
        assert "bad" not in b.streams and "good" in b.streams


class TestBuilder:
    def test_empty_builder(self):
        bb = BundleBuilder(1024, T0)
        assert not bb.has_content() and not bb.ready()

    def test_terminal_only_counts_as_content(self):
        b = Bundler(1 << 30, 0)
        s = b.register(desc("a"))
        bb = BundleBuilder(1, T0)
        bb.set_terminal(s, 0)
        assert bb.has_content() and bb.ready()

    def test_remaining(self):
        bb = BundleBuilder(1024, T0 + 999_999_999)
        assert bb.remaining() == 1024 - bb.size
        assert bb.size == 14  # timestamp with seconds and nanos (reference section 5)

    def test_size_estimate_matches_encoding(self):
        from butlerd._proto import bundle_to_proto

        b = Bundler(1 << 30, 0)
        streams = {n: b.register(desc(n, st)) for n, st in
                   [("a", StreamType.TEXT), ("b", StreamType.BINARY), ("c", StreamType.DATAGRAM)]}
        bb = BundleBuilder(1 << 30, T0 + 5)
        e = lambda i, c: LogEntry(i * 7, i, i, i, c)  # noqa: E731
        bb.add(streams["a"], e(1, TextContent(b"x" * 1024 + b"\n")))
        bb.add(streams["b"], e(1, BinaryContent(b"y" * 8192)))
        bb.add(streams["a"], e(2, TextContent(b"z" * 4096 + b"\r\nq")))
        bb.add(streams["c"], e(1, DatagramContent(b"w")))
        for s in streams.values():
            bb.set_terminal(s, 1)
        assert bb.size == bundle_to_proto(bb.bundle()).ByteSize()


def test_terminal_index_zero_is_estimated_one_byte_large_like_go():
    from butlerd._proto import bundle_to_proto

    b = Bundler(1 << 30, 0)
    s = b.register(desc("a"))
    bb = BundleBuilder(1 << 30, T0 + 5)
    bb.add(s, LogEntry(0, 0, 0, 0, TextContent(b"x\n")))
    bb.set_terminal(s, 0)
    assert bb.size == bundle_to_proto(bb.bundle()).ByteSize() + 1


def test_zero_length_appends_are_ignored():
    b = Bundler(1 << 30, 0)
    s = b.register(desc("a"))
    s.append(b"", T0)
    assert s.buffered == 0
    s.close()
    b.flush()
    assert poll_all(b, T0) == []  # no entry, so no terminal either
