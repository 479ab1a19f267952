// Command loadgen plays one benchmark workload through the real LUCI Go stream
// client (butlerlib/streamclient), so the client's cost is the same whichever
// daemon (butlerd or logdog_butler) serves the socket.
//
// It connects to -server (or $LOGDOG_STREAM_SERVER_PATH), plays the workload
// until every stream is written and closed, and prints one JSON object on
// stdout describing what it sent (payload bytes, lines or datagrams, streams)
// and, for the latency workload, the measured latencies. The runner (python -m
// bench) checks the daemon's output against these numbers.
//
// Workloads:
//
//	text      one text stream of -line-byte lines, -size bytes in all
//	multi     -streams concurrent text streams sharing -size bytes
//	binary    one binary stream in -write-byte writes, -size bytes in all
//	datagram  one datagram stream of -dgram-byte datagrams, -size bytes in all
//	streams   -streams streams opened at once, -lines lines each, then closed
//	latency   one text stream, one line every 1/-rate s for -duration; the
//	          time from each Write to the line appearing in -watch-dir/NAME
//
// Text and binary payloads are written in blocks of whole lines (about 64 KiB,
// what a buffered writer would hand the socket): a write per 100-byte line
// would measure the client's syscalls, not the daemon.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"go.chromium.org/luci/logdog/client/butlerlib/streamclient"
	"go.chromium.org/luci/logdog/common/types"
)

type config struct {
	workload string
	server   string
	size     int64
	line     int
	block    int
	write    int
	dgram    int
	streams  int
	lines    int
	rate     float64
	duration time.Duration
	watchDir string
	timeout  time.Duration
}

// report is what loadgen prints: what it sent and how long the client took.
type report struct {
	Workload  string  `json:"workload"`
	Bytes     int64   `json:"bytes"`     // payload bytes written (text: including '\n')
	Lines     int64   `json:"lines"`     // text lines written
	Datagrams int64   `json:"datagrams"` // datagrams written
	Streams   int     `json:"streams"`   // streams opened and closed
	ClientSec float64 `json:"client_sec"`
	// Latency workload only (microseconds).
	Latency *latencyReport `json:"latency,omitempty"`
}

type latencyReport struct {
	Samples int     `json:"samples"`
	Missing int     `json:"missing"`
	P50us   float64 `json:"p50_us"`
	P90us   float64 `json:"p90_us"`
	P99us   float64 `json:"p99_us"`
	MaxUs   float64 `json:"max_us"`
	MeanUs  float64 `json:"mean_us"`
}

func main() {
	var c config
	flag.StringVar(&c.workload, "workload", "text", "text|multi|binary|datagram|streams|latency")
	flag.StringVar(&c.server, "server", os.Getenv("LOGDOG_STREAM_SERVER_PATH"), "stream server (unix:PATH)")
	flag.Int64Var(&c.size, "size", 1<<30, "payload bytes in all (text, multi, binary, datagram)")
	flag.IntVar(&c.line, "line", 100, "text line length in bytes, including the newline")
	flag.IntVar(&c.block, "block", 64*1024, "text: bytes per Write, rounded down to whole lines")
	flag.IntVar(&c.write, "write", 64*1024, "binary: bytes per Write")
	flag.IntVar(&c.dgram, "dgram", 1024, "datagram size in bytes")
	flag.IntVar(&c.streams, "streams", 64, "multi/streams: number of concurrent streams")
	flag.IntVar(&c.lines, "lines", 10, "streams: lines written to each stream")
	flag.Float64Var(&c.rate, "rate", 1000, "latency: lines per second")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "latency: how long to write")
	flag.StringVar(&c.watchDir, "watch-dir", "", "latency: the directory output's root")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "latency: wait this long for the last lines")
	flag.Parse()

	if err := run(&c); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(c *config) error {
	if c.server == "" {
		return fmt.Errorf("no -server and no $LOGDOG_STREAM_SERVER_PATH")
	}
	client, err := streamclient.New(c.server, "")
	if err != nil {
		return err
	}
	ctx := context.Background()
	r := &report{Workload: c.workload}
	start := time.Now()
	switch c.workload {
	case "text":
		err = textStreams(ctx, client, c, 1, r)
	case "multi":
		err = textStreams(ctx, client, c, c.streams, r)
	case "binary":
		err = binaryStream(ctx, client, c, r)
	case "datagram":
		err = datagramStream(ctx, client, c, r)
	case "streams":
		err = smallStreams(ctx, client, c, r)
	case "latency":
		err = latency(ctx, client, c, r)
	default:
		err = fmt.Errorf("unknown workload %q", c.workload)
	}
	if err != nil {
		return err
	}
	r.ClientSec = time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(r)
}

// lineBlock returns n lines of exactly lineLen bytes each (the last byte '\n'),
// each starting with its index so lines differ, as real logs do.
func lineBlock(n, lineLen int) []byte {
	const filler = "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz "
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		l := []byte(fmt.Sprintf("%08d ", i))
		for len(l) < lineLen-1 {
			l = append(l, filler[len(l)%len(filler)])
		}
		b.Write(l[:lineLen-1])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// writeLines writes `lines` lines to w in blocks of whole lines.
func writeLines(w io.Writer, block []byte, lineLen int, lines int64) error {
	perBlock := int64(len(block) / lineLen)
	for lines > 0 {
		n := min(perBlock, lines)
		if _, err := w.Write(block[:n*int64(lineLen)]); err != nil {
			return err
		}
		lines -= n
	}
	return nil
}

func textStreams(ctx context.Context, client *streamclient.Client, c *config, n int, r *report) error {
	if c.line < 2 {
		return fmt.Errorf("-line must be >= 2")
	}
	block := lineBlock(max(1, c.block/c.line), c.line)
	totalLines := c.size / int64(c.line)
	streams := make([]io.WriteCloser, n)
	for i := range streams {
		s, err := client.NewStream(ctx, types.StreamName(fmt.Sprintf("bench/text/%d", i)))
		if err != nil {
			return err
		}
		streams[i] = s
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, s := range streams {
		lines := totalLines / int64(n)
		if int64(i) < totalLines%int64(n) {
			lines++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeLines(s, block, c.line, lines); err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	r.Lines = totalLines
	r.Bytes = totalLines * int64(c.line)
	r.Streams = n
	return nil
}

// pseudoRandom returns n reproducible bytes that do not compress.
func pseudoRandom(n int, seed uint64) []byte {
	out := make([]byte, n)
	x := seed*2654435761 + 0x9E3779B97F4A7C15
	for i := range out {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		out[i] = byte((x * 2685821657736338717) >> 56)
	}
	return out
}

func binaryStream(ctx context.Context, client *streamclient.Client, c *config, r *report) error {
	s, err := client.NewStream(ctx, "bench/binary", streamclient.Binary())
	if err != nil {
		return err
	}
	buf := pseudoRandom(c.write, 1)
	left := c.size
	for left > 0 {
		n := min(int64(len(buf)), left)
		if _, err := s.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	r.Bytes = c.size
	r.Streams = 1
	return s.Close()
}

func datagramStream(ctx context.Context, client *streamclient.Client, c *config, r *report) error {
	s, err := client.NewDatagramStream(ctx, "bench/dgram")
	if err != nil {
		return err
	}
	buf := pseudoRandom(c.dgram, 2)
	count := c.size / int64(c.dgram)
	for i := int64(0); i < count; i++ {
		if err := s.WriteDatagram(buf); err != nil {
			return err
		}
	}
	r.Datagrams = count
	r.Bytes = count * int64(c.dgram)
	r.Streams = 1
	return s.Close()
}

// smallStreams opens every stream first (all are open at once), then writes
// each one's lines and closes it, one goroutine per stream.
func smallStreams(ctx context.Context, client *streamclient.Client, c *config, r *report) error {
	block := lineBlock(c.lines, c.line)
	streams := make([]io.WriteCloser, c.streams)
	for i := range streams {
		s, err := client.NewStream(ctx, types.StreamName(fmt.Sprintf("bench/small/%d", i)))
		if err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		streams[i] = s
	}
	errs := make(chan error, len(streams))
	for _, s := range streams {
		go func() {
			if _, err := s.Write(block); err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		}()
	}
	for range streams {
		if err := <-errs; err != nil {
			return err
		}
	}
	r.Streams = c.streams
	r.Lines = int64(c.streams) * int64(c.lines)
	r.Bytes = r.Lines * int64(c.line)
	return nil
}

// latency writes one line every 1/rate seconds (absolute schedule, so a slow
// write does not lower the rate) and records when each Write began. A watcher
// goroutine is woken by inotify whenever the daemon writes into the output
// directory, reads what was appended to the stream's file and, for every line
// that arrived, takes now - sendTime[seq]. Both times come from this process's
// monotonic clock; the watcher adds only a read() after the daemon's write().
func latency(ctx context.Context, client *streamclient.Client, c *config, r *report) error {
	if c.watchDir == "" {
		return fmt.Errorf("latency needs -watch-dir (the directory output's root)")
	}
	const name = "latency"
	count := int(c.rate * c.duration.Seconds())
	if count < 1 {
		return fmt.Errorf("rate * duration < 1 line")
	}
	base := time.Now()
	sent := make([]atomic.Int64, count) // ns since base; 0 = not sent yet
	arrived := make([]int64, count)     // ns from Write to arrival; 0 = not seen

	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	if _, err := unix.InotifyAddWatch(fd, c.watchDir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_CLOSE_WRITE); err != nil {
		return err
	}
	watchDone := make(chan int) // lines seen
	stop := make(chan struct{})
	go func() {
		path := filepath.Join(c.watchDir, name)
		var f *os.File
		var pending []byte
		seen := 0
		evbuf := make([]byte, 64*1024)
		rbuf := make([]byte, 1<<20)
		for seen < count {
			select {
			case <-stop:
				watchDone <- seen
				return
			default:
			}
			var pfd = []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, _ := unix.Poll(pfd, 100); n <= 0 {
				continue
			}
			if _, err := unix.Read(fd, evbuf); err != nil {
				continue
			}
			if f == nil {
				if f, err = os.Open(path); err != nil {
					f = nil
					continue
				}
			}
			for {
				n, _ := f.Read(rbuf)
				if n <= 0 {
					break
				}
				now := time.Since(base).Nanoseconds()
				pending = append(pending, rbuf[:n]...)
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					line := pending[:i]
					pending = pending[i+1:]
					// A line starts "L<10 digits> "; a piece of a line split by
					// the daemon (-output-no-buffer) does not, and is skipped:
					// the line counts as arrived with its first piece.
					if len(line) < 11 || line[0] != 'L' {
						continue
					}
					seq, err := strconv.Atoi(string(line[1:11]))
					if err != nil || seq < 0 || seq >= count || arrived[seq] != 0 {
						continue
					}
					arrived[seq] = max(1, now-sent[seq].Load())
					seen++
				}
			}
		}
		watchDone <- seen
	}()

	s, err := client.NewStream(ctx, name)
	if err != nil {
		return err
	}
	pad := lineBlock(1, c.line)
	interval := time.Duration(float64(time.Second) / c.rate)
	line := make([]byte, c.line)
	start := time.Now()
	for i := 0; i < count; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		copy(line, pad)
		copy(line, fmt.Sprintf("L%010d ", i))
		sent[i].Store(time.Since(base).Nanoseconds())
		if _, err := s.Write(line); err != nil {
			return err
		}
	}
	if err := s.Close(); err != nil {
		return err
	}
	var seen int
	select {
	case seen = <-watchDone:
	case <-time.After(c.timeout):
		close(stop)
		seen = <-watchDone
	}
	unix.Close(fd)

	lat := make([]float64, 0, seen)
	for _, ns := range arrived {
		if ns > 0 {
			lat = append(lat, float64(ns)/1e3)
		}
	}
	sort.Float64s(lat)
	lr := &latencyReport{Samples: len(lat), Missing: count - len(lat)}
	if len(lat) > 0 {
		pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		lr.P50us, lr.P90us, lr.P99us, lr.MaxUs = pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1]
		sum := 0.0
		for _, v := range lat {
			sum += v
		}
		lr.MeanUs = sum / float64(len(lat))
	}
	r.Latency = lr
	r.Lines = int64(count)
	r.Bytes = int64(count) * int64(c.line)
	r.Streams = 1
	return nil
}
