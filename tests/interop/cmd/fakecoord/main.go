// Command fakecoord is a stand-in LogDog Coordinator: it serves
// logdog.Registration/RegisterPrefix with luci-go's own pRPC server, so a
// client is accepted only if it speaks pRPC as luci-go's server expects.
//
// It answers every registration with -topic and -secret, after failing the
// first -fail-first calls with UNAVAILABLE. A prefix registers once: a repeat
// with the same op_nonce is a retry and gets the same answer, a repeat with
// another nonce gets ALREADY_EXISTS (as the Coordinator does).
//
// Every call is appended to -log as one JSON line. It prints
// "listening on ADDR" once ready and serves until killed.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"go.chromium.org/luci/grpc/prpc"
	api "go.chromium.org/luci/logdog/api/endpoints/coordinator/registration/v1"
	"go.chromium.org/luci/server/router"
)

type call struct {
	Project      string              `json:"project"`
	Prefix       string              `json:"prefix"`
	Realm        string              `json:"realm"`
	SourceInfo   []string            `json:"source_info"`
	OpNonce      string              `json:"op_nonce"` // hex
	HasExpiry    bool                `json:"has_expiration"`
	ExpirationNs int64               `json:"expiration_ns"`
	DeadlineMs   int64               `json:"deadline_ms"` // -1: the call had no deadline
	Metadata     map[string][]string `json:"metadata"`
	Answer       string              `json:"answer"`
}

type coordinator struct {
	topic     string
	secret    []byte
	failFirst int

	mu     sync.Mutex
	calls  int
	nonces map[string]string // prefix -> nonce of its registration
	log    *os.File
}

func (c *coordinator) RegisterPrefix(ctx context.Context, req *api.RegisterPrefixRequest) (*api.RegisterPrefixResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++

	rec := call{
		Project: req.Project, Prefix: req.Prefix, Realm: req.Realm, SourceInfo: req.SourceInfo,
		OpNonce: hex.EncodeToString(req.OpNonce), HasExpiry: req.Expiration != nil,
		ExpirationNs: req.Expiration.AsDuration().Nanoseconds(), DeadlineMs: -1,
	}
	if d, ok := ctx.Deadline(); ok {
		rec.DeadlineMs = time.Until(d).Milliseconds()
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		rec.Metadata = md
	}

	var resp *api.RegisterPrefixResponse
	var err error
	switch prev, seen := c.nonces[req.Prefix]; {
	case c.calls <= c.failFirst:
		err = status.Errorf(codes.Unavailable, "fakecoord: failing call %d on purpose", c.calls)
	case seen && prev != rec.OpNonce:
		err = status.Errorf(codes.AlreadyExists, "prefix %q is already registered", req.Prefix)
	case len(req.OpNonce) != 32:
		err = status.Errorf(codes.InvalidArgument, "op_nonce must be 32 bytes")
	default:
		c.nonces[req.Prefix] = rec.OpNonce
		resp = &api.RegisterPrefixResponse{Secret: c.secret, LogBundleTopic: c.topic}
	}
	rec.Answer = status.Code(err).String()
	line, _ := json.Marshal(rec)
	c.log.Write(append(line, '\n'))
	return resp, err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	topic := flag.String("topic", "", "log_bundle_topic to answer")
	secretHex := flag.String("secret", "", "prefix secret to answer, hex")
	failFirst := flag.Int("fail-first", 0, "fail this many calls with UNAVAILABLE first")
	logPath := flag.String("log", "", "append one JSON line per call here")
	flag.Parse()

	secret, err := hex.DecodeString(*secretHex)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad -secret:", err)
		os.Exit(2)
	}
	logFile := os.Stderr
	if *logPath != "" {
		if logFile, err = os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	c := &coordinator{topic: *topic, secret: secret, failFirst: *failFirst,
		nonces: map[string]string{}, log: logFile}

	srv := prpc.Server{}
	api.RegisterRegistrationServer(&srv, c)
	r := router.New()
	srv.InstallHandlers(r, nil)

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	os.Stdout.Sync()
	if err := http.Serve(l, r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
