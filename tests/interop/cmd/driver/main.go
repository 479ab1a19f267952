// Command driver plays a scripted workload through the real LUCI Go stream
// client (butlerlib/streamclient + butlerlib/bootstrap), so that the same
// client bytes can be sent to butlerd and to the reference logdog_butler.
//
// Modes:
//
//	driver play WORKLOAD.json       connect via bootstrap.Get() and play it
//	driver child WORKLOAD.json I    (internal) write stream I's writes to stdout
//	driver capture CASES.json       record the handshake bytes the client sends
//
// The workload is JSON (see workload below). Each write is one Write (or
// WriteDatagram) call with exactly the bytes described, so write sizes are
// precise. Every stream is fully written and closed before play exits, so a
// daemon that is stopped after the driver exits has been sent every byte.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.chromium.org/luci/logdog/client/butlerlib/bootstrap"
	"go.chromium.org/luci/logdog/client/butlerlib/streamclient"
	"go.chromium.org/luci/logdog/common/types"
)

// data describes one write's bytes. Exactly one form is used:
//   - S: the UTF-8 string itself;
//   - Hex: hex-encoded bytes;
//   - Fill + N: Fill repeated and cut to exactly N bytes;
//   - Rand + Seed: Rand pseudo-random bytes (xorshift64*, seeded), so large
//     binary payloads need not be spelled out.
type data struct {
	S    *string `json:"s,omitempty"`
	Hex  *string `json:"hex,omitempty"`
	Fill *string `json:"fill,omitempty"`
	N    int     `json:"n,omitempty"`
	Rand *int    `json:"rand,omitempty"`
	Seed uint64  `json:"seed,omitempty"`
}

func (d data) bytes() ([]byte, error) {
	switch {
	case d.S != nil:
		return []byte(*d.S), nil
	case d.Hex != nil:
		return hex.DecodeString(*d.Hex)
	case d.Fill != nil:
		if len(*d.Fill) == 0 && d.N > 0 {
			return nil, fmt.Errorf("empty fill with n=%d", d.N)
		}
		out := make([]byte, d.N)
		for i := range out {
			out[i] = (*d.Fill)[i%len(*d.Fill)]
		}
		return out, nil
	case d.Rand != nil:
		out := make([]byte, *d.Rand)
		x := d.Seed*2654435761 + 0x9E3779B97F4A7C15
		for i := range out {
			x ^= x >> 12
			x ^= x << 25
			x ^= x >> 27
			out[i] = byte((x * 2685821657736338717) >> 56)
		}
		return out, nil
	}
	return nil, fmt.Errorf("write has no data form (s, hex, fill or rand)")
}

// stream is one stream of a workload.
type stream struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"` // text (default), binary, datagram
	ContentType string            `json:"content_type,omitempty"`
	Timestamp   string            `json:"timestamp,omitempty"` // RFC 3339; empty = client's "now"
	Tags        map[string]string `json:"tags,omitempty"`
	// Namespace, when set, makes the stream use its own client
	// (streamclient.New) with this namespace instead of the bootstrap one.
	Namespace  *string `json:"namespace,omitempty"`
	ForProcess bool    `json:"for_process,omitempty"`
	Writes     []data  `json:"writes"`
	// PauseMS sleeps between writes (separate reads on the server, or
	// buffered data growing old).
	PauseMS int `json:"pause_ms,omitempty"`
	// DelayMS sleeps before the stream is opened (to order registrations).
	DelayMS int `json:"delay_ms,omitempty"`
	// MayFail: the daemon is expected to refuse this stream, so errors while
	// opening, writing or closing it are ignored.
	MayFail bool `json:"may_fail,omitempty"`
}

// pause sleeps PauseMS after write i, unless it was the last one.
func (s *stream) pause(i int) {
	if s.PauseMS > 0 && i < len(s.Writes)-1 {
		time.Sleep(time.Duration(s.PauseMS) * time.Millisecond)
	}
}

// workload is a whole script. With Concurrent, every stream is opened first,
// then all are written at once (one goroutine each), then all are closed;
// otherwise each stream is opened, written and closed in order.
type workload struct {
	Concurrent bool     `json:"concurrent,omitempty"`
	Streams    []stream `json:"streams"`
}

func loadWorkload(path string) (*workload, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var w workload
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return &w, nil
}

func (s *stream) options() ([]streamclient.Option, error) {
	var opts []streamclient.Option
	switch s.Type {
	case "", "text", "datagram":
	case "binary":
		opts = append(opts, streamclient.Binary())
	default:
		return nil, fmt.Errorf("stream %q: unknown type %q", s.Name, s.Type)
	}
	if s.ContentType != "" {
		opts = append(opts, streamclient.WithContentType(s.ContentType))
	}
	if s.Timestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, s.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", s.Name, err)
		}
		opts = append(opts, streamclient.WithTimestamp(t))
	}
	if s.Tags != nil {
		opts = append(opts, streamclient.WithTagMap(s.Tags))
	}
	if s.ForProcess {
		opts = append(opts, streamclient.ForProcess())
	}
	return opts, nil
}

// open is a stream that has been dialed and not yet closed.
type open struct {
	spec  *stream
	index int
	w     io.WriteCloser              // text/binary
	dg    streamclient.DatagramStream // datagram
}

func dial(ctx context.Context, serverPath string, def *streamclient.Client, s *stream, index int) (*open, error) {
	if s.DelayMS > 0 {
		time.Sleep(time.Duration(s.DelayMS) * time.Millisecond)
	}
	c := def
	if s.Namespace != nil {
		var err error
		if c, err = streamclient.New(serverPath, types.StreamName(*s.Namespace)); err != nil {
			return nil, err
		}
	}
	opts, err := s.options()
	if err != nil {
		return nil, err
	}
	o := &open{spec: s, index: index}
	if s.Type == "datagram" {
		o.dg, err = c.NewDatagramStream(ctx, types.StreamName(s.Name), opts...)
	} else {
		o.w, err = c.NewStream(ctx, types.StreamName(s.Name), opts...)
	}
	return o, err
}

func writeAll(w io.Writer, s *stream) error {
	for i, d := range s.Writes {
		b, err := d.bytes()
		if err != nil {
			return fmt.Errorf("stream %q write %d: %w", s.Name, i, err)
		}
		n, err := w.Write(b)
		if err != nil {
			return fmt.Errorf("stream %q write %d: %w", s.Name, i, err)
		}
		if n != len(b) {
			return fmt.Errorf("stream %q write %d: short write %d/%d", s.Name, i, n, len(b))
		}
		s.pause(i)
	}
	return nil
}

// play writes the stream's data and closes it.
func (o *open) play(workloadPath string) error {
	s := o.spec
	switch {
	case o.dg != nil:
		for i, d := range s.Writes {
			b, err := d.bytes()
			if err == nil {
				err = o.dg.WriteDatagram(b)
			}
			if err != nil {
				o.dg.Close()
				return fmt.Errorf("stream %q datagram %d: %w", s.Name, i, err)
			}
			s.pause(i)
		}
		return o.dg.Close()
	case s.ForProcess:
		// The stream is an *os.File: hand it to a child (this program
		// re-executed) as its stdout, then close our copy after it exits.
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(self, "child", workloadPath, strconv.Itoa(o.index))
		cmd.Stdout = o.w
		cmd.Stderr = os.Stderr
		runErr := cmd.Run()
		closeErr := o.w.Close()
		if runErr != nil {
			return fmt.Errorf("stream %q child: %w", s.Name, runErr)
		}
		return closeErr
	default:
		if err := writeAll(o.w, s); err != nil {
			o.w.Close()
			return err
		}
		return o.w.Close()
	}
}

func runPlay(workloadPath string) error {
	w, err := loadWorkload(workloadPath)
	if err != nil {
		return err
	}
	absPath, err := filepath.Abs(workloadPath)
	if err != nil {
		return err
	}
	bs, err := bootstrap.Get()
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	serverPath := os.Getenv(bootstrap.EnvStreamServerPath)
	ctx := context.Background()

	if !w.Concurrent {
		for i := range w.Streams {
			s := &w.Streams[i]
			o, err := dial(ctx, serverPath, bs.Client, s, i)
			if err == nil {
				err = o.play(absPath)
			}
			if err != nil && !s.MayFail {
				return err
			}
		}
		return nil
	}

	opened := make([]*open, 0, len(w.Streams))
	for i := range w.Streams {
		s := &w.Streams[i]
		o, err := dial(ctx, serverPath, bs.Client, s, i)
		if err != nil {
			if s.MayFail {
				continue
			}
			return err
		}
		opened = append(opened, o)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(opened))
	for i, o := range opened {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.play(absPath); err != nil && !o.spec.MayFail {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func runChild(workloadPath, index string) error {
	w, err := loadWorkload(workloadPath)
	if err != nil {
		return err
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= len(w.Streams) {
		return fmt.Errorf("bad stream index %q", index)
	}
	return writeAll(os.Stdout, &w.Streams[i])
}

// captureCase is one option set whose handshake is recorded.
type captureCase struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace,omitempty"`
	stream
}

type captured struct {
	ID           string `json:"id"`
	HandshakeHex string `json:"handshake_hex"`
}

// runCapture listens on a private unix socket, opens one stream per case
// through streamclient (writing no body), and prints what arrived.
func runCapture(casesPath string) error {
	raw, err := os.ReadFile(casesPath)
	if err != nil {
		return err
	}
	var cases []json.RawMessage
	if err := json.Unmarshal(raw, &cases); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cap")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Net: "unix", Name: sock})
	if err != nil {
		return err
	}
	defer ln.Close()

	ctx := context.Background()
	out := make([]captured, 0, len(cases))
	for _, rc := range cases {
		var c captureCase
		if err := json.Unmarshal(rc, &c); err != nil {
			return err
		}
		client, err := streamclient.New("unix:"+sock, types.StreamName(c.Namespace))
		if err != nil {
			return err
		}
		got := make(chan []byte, 1)
		gotErr := make(chan error, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				gotErr <- err
				return
			}
			defer conn.Close()
			b, err := io.ReadAll(conn)
			if err != nil {
				gotErr <- err
				return
			}
			got <- b
		}()
		o, err := dial(ctx, "unix:"+sock, client, &c.stream, 0)
		if err != nil {
			return fmt.Errorf("case %s: %w", c.ID, err)
		}
		if o.dg != nil {
			err = o.dg.Close()
		} else {
			err = o.w.Close()
		}
		if err != nil {
			return err
		}
		select {
		case b := <-got:
			out = append(out, captured{ID: c.ID, HandshakeHex: hex.EncodeToString(b)})
		case err := <-gotErr:
			return err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "play":
		err = runPlay(os.Args[2])
	case len(os.Args) == 4 && os.Args[1] == "child":
		err = runChild(os.Args[2], os.Args[3])
	case len(os.Args) == 3 && os.Args[1] == "capture":
		err = runCapture(os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "usage: driver play WORKLOAD.json | child WORKLOAD.json I | capture CASES.json")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
}
