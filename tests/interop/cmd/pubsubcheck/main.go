// Command pubsubcheck reads Pub/Sub messages published by a Butler and checks
// them with luci-go's own code: the pubsubprotocol reader the LogDog collector
// uses, then the collector's acceptance rules (project, prefix, secret,
// descriptor, per-entry log validation, contiguous stream indices).
//
// Input on stdin: the messages' data, each as uvarint(length) || bytes.
// Output on stdout: a JSON report (see report below). Exit status 0 even when
// messages are rejected: the report says what was wrong.
package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"google.golang.org/protobuf/proto"

	"go.chromium.org/luci/common/data/recordio"
	"go.chromium.org/luci/config"
	"go.chromium.org/luci/logdog/api/logpb"
	"go.chromium.org/luci/logdog/client/pubsubprotocol"
	"go.chromium.org/luci/logdog/common/types"
)

type stream struct {
	Type        string            `json:"type"`
	ContentType string            `json:"content_type"`
	Tags        map[string]string `json:"tags"`
	Indices     []uint64          `json:"indices"`
	Sequences   []uint64          `json:"sequences"`
	Terminals   []uint64          `json:"terminals"`
	Data        []byte            `json:"data"`      // text (value+delimiter) or binary bytes
	Datagrams   [][]byte          `json:"datagrams"` // reassembled datagrams
	logs        []*logpb.LogEntry
}

type report struct {
	Messages   int `json:"messages"`
	Compressed int `json:"compressed"`
	// Messages whose bytes equal what luci-go's pubsubprotocol.Writer produces
	// for the decoded bundle (expected: every uncompressed message).
	IdenticalToGoWriter int `json:"identical_to_go_writer"`
	// Messages whose serialized bundle (after decompression) equals Go's
	// proto.Marshal of the decoded bundle.
	IdenticalBundleBytes int                `json:"identical_bundle_bytes"`
	Rejected             []string           `json:"rejected"`
	Projects             []string           `json:"projects"`
	Prefixes             []string           `json:"prefixes"`
	SecretsOK            bool               `json:"secrets_ok"`
	Streams              map[string]*stream `json:"streams"`
}

func main() {
	secretHex := flag.String("secret", "", "expected prefix secret, hex (empty: any valid one)")
	flag.Parse()
	want, err := hex.DecodeString(*secretHex)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad -secret:", err)
		os.Exit(2)
	}

	in := bufio.NewReader(os.Stdin)
	rep := report{Streams: map[string]*stream{}, SecretsOK: true, Rejected: []string{}}
	projects, prefixes := map[string]bool{}, map[string]bool{}
	for {
		n, err := binary.ReadUvarint(in)
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(in, msg); err != nil {
			fail(err)
		}
		rep.Messages++
		if err := check(&rep, msg, want, projects, prefixes); err != nil {
			rep.Rejected = append(rep.Rejected, fmt.Sprintf("message %d: %s", rep.Messages, err))
		}
	}
	rep.Projects, rep.Prefixes = keys(projects), keys(prefixes)
	for name, s := range rep.Streams {
		if err := s.assemble(); err != nil {
			rep.Rejected = append(rep.Rejected, fmt.Sprintf("stream %q: %s", name, err))
		}
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", " ")
	if err := out.Encode(rep); err != nil {
		fail(err)
	}
}

func check(rep *report, msg, want []byte, projects, prefixes map[string]bool) error {
	r := pubsubprotocol.Reader{}
	if err := r.Read(bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("pubsubprotocol reader: %w", err)
	}
	if r.Metadata.ProtoVersion != logpb.Version {
		return fmt.Errorf("proto version %q", r.Metadata.ProtoVersion)
	}
	if r.Bundle == nil {
		return fmt.Errorf("no bundle")
	}
	b := r.Bundle
	if r.Metadata.Compression == logpb.ButlerMetadata_ZLIB {
		rep.Compressed++
	}

	// Byte comparisons with what luci-go itself would write for this bundle.
	var goMsg bytes.Buffer
	w := pubsubprotocol.Writer{Compress: true, CompressThreshold: pubsubprotocol.DefaultCompressThreshold}
	if err := w.Write(&goMsg, b); err != nil {
		return fmt.Errorf("go writer: %w", err)
	}
	if bytes.Equal(goMsg.Bytes(), msg) {
		rep.IdenticalToGoWriter++
	}
	raw, err := rawBundle(msg)
	if err != nil {
		return err
	}
	goRaw, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
	if err != nil {
		return err
	}
	if bytes.Equal(goRaw, raw) {
		rep.IdenticalBundleBytes++
	}

	// The collector's rules.
	if err := config.ValidateProjectName(b.Project); err != nil {
		return fmt.Errorf("invalid bundle project name: %w", err)
	}
	if err := types.StreamName(b.Prefix).Validate(); err != nil {
		return fmt.Errorf("invalid bundle prefix: %w", err)
	}
	projects[b.Project], prefixes[b.Prefix] = true, true
	if err := types.PrefixSecret(b.Secret).Validate(); err != nil {
		return err
	}
	if len(want) > 0 && !bytes.Equal(want, b.Secret) {
		rep.SecretsOK = false
	}
	for _, e := range b.Entries {
		if len(e.Logs) == 0 && !e.Terminal {
			return fmt.Errorf("entry %q: non-terminal and no logs", e.Desc.GetName())
		}
		if p := e.Desc.Prefix; p != "" && p != b.Prefix {
			return fmt.Errorf("entry prefix %q != bundle prefix %q", p, b.Prefix)
		}
		desc := proto.Clone(e.Desc).(*logpb.LogStreamDescriptor)
		desc.Prefix = b.Prefix
		if err := desc.Validate(true); err != nil {
			return fmt.Errorf("descriptor %q: %w", desc.Name, err)
		}
		s := rep.Streams[desc.Name]
		if s == nil {
			s = &stream{Type: desc.StreamType.String(), ContentType: desc.ContentType, Tags: desc.Tags,
				Indices: []uint64{}, Sequences: []uint64{}, Terminals: []uint64{}, Data: []byte{},
				Datagrams: [][]byte{}}
			rep.Streams[desc.Name] = s
		}
		for i, le := range e.Logs {
			if err := le.Validate(desc); err != nil {
				return fmt.Errorf("stream %q log %d: %w", desc.Name, le.StreamIndex, err)
			}
			if le.StreamIndex != e.Logs[0].StreamIndex+uint64(i) {
				return fmt.Errorf("stream %q: non-contiguous log entry block", desc.Name)
			}
			s.logs = append(s.logs, le)
		}
		if e.Terminal {
			s.Terminals = append(s.Terminals, e.TerminalIndex)
		}
	}
	return nil
}

// assemble orders the stream's log entries by stream index (messages may be
// pulled in any order) and rebuilds its data.
func (s *stream) assemble() error {
	sort.Slice(s.logs, func(i, j int) bool { return s.logs[i].StreamIndex < s.logs[j].StreamIndex })
	pending := []byte{}
	active := false
	for _, le := range s.logs {
		s.Indices = append(s.Indices, le.StreamIndex)
		s.Sequences = append(s.Sequences, le.Sequence)
		switch c := le.Content.(type) {
		case *logpb.LogEntry_Text:
			for _, l := range c.Text.Lines {
				s.Data = append(s.Data, l.Value...)
				s.Data = append(s.Data, l.Delimiter...)
			}
		case *logpb.LogEntry_Binary:
			s.Data = append(s.Data, c.Binary.Data...)
		case *logpb.LogEntry_Datagram:
			pending = append(pending, c.Datagram.Data...)
			active = true
			if c.Datagram.Partial == nil || c.Datagram.Partial.Last {
				s.Datagrams = append(s.Datagrams, pending)
				pending, active = []byte{}, false
			}
		}
	}
	if active {
		return fmt.Errorf("a datagram was left incomplete")
	}
	return nil
}

// rawBundle returns the serialized bundle inside a message, decompressed.
func rawBundle(msg []byte) ([]byte, error) {
	fr := recordio.NewReader(bytes.NewReader(msg), 1<<30)
	mdBytes, err := fr.ReadFrameAll()
	if err != nil {
		return nil, err
	}
	md := logpb.ButlerMetadata{}
	if err := proto.Unmarshal(mdBytes, &md); err != nil {
		return nil, err
	}
	data, err := fr.ReadFrameAll()
	if err != nil {
		return nil, err
	}
	if md.Compression != logpb.ButlerMetadata_ZLIB {
		return data, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pubsubcheck:", err)
	os.Exit(1)
}
