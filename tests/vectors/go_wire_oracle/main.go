// Command go_wire_oracle answers wire-format questions with the real Go code.
//
// It reads one JSON request per line on stdin and writes one JSON answer per
// line; regen.py uses it to (re)build ../go_wire_oracle.json. Build:
//   cp -r tests/vectors/go_wire_oracle /tmp/o && cd /tmp/o && GOFLAGS=-mod=mod go build -o /tmp/go_wire_oracle .

package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"go.chromium.org/luci/common/clock/clockflag"
	"go.chromium.org/luci/config"
	"go.chromium.org/luci/logdog/client/butlerlib/streamproto"
	"go.chromium.org/luci/logdog/common/types"
)

type req struct {
	Op   string   `json:"op"`
	Hex  string   `json:"hex"`
	Hex2 string   `json:"hex2"`
	Segs []string `json:"segs"`
	// encode
	Name, ContentType, Type string
	Sec, Nsec             int64
	Tags                  map[string]string
}

func unhex(s string) string { b, _ := hex.DecodeString(s); return string(b) }

func errs(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r req
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			panic(err)
		}
		res := map[string]any{}
		switch r.Op {
		case "handshake":
			f := streamproto.Flags{}
			rd := bytes.NewReader([]byte(unhex(r.Hex)))
			err := f.FromHandshake(rd)
			res["err"] = errs(err)
			if err == nil {
				res["name"] = hex.EncodeToString([]byte(f.Name))
				res["contentType"] = hex.EncodeToString([]byte(f.ContentType))
				res["type"] = int(f.Type)
				t := f.Timestamp.Time()
				if t.IsZero() {
					res["ts"] = nil
				} else {
					res["ts"] = fmt.Sprintf("%d %d", t.Unix(), t.Nanosecond())
				}
				tags := map[string]string{}
				for k, v := range f.Tags {
					tags[hex.EncodeToString([]byte(k))] = hex.EncodeToString([]byte(v))
				}
				res["tags"] = tags
				res["rest"] = rd.Len()
			}
		case "name":
			res["err"] = errs(types.StreamName(unhex(r.Hex)).Validate())
		case "tag":
			res["err"] = errs(types.ValidateTag(unhex(r.Hex), unhex(r.Hex2)))
		case "project":
			res["err"] = errs(config.ValidateProjectName(unhex(r.Hex)))
		case "makename":
			n, err := types.MakeStreamName(unhex(r.Hex), r.Segs...)
			res["err"] = errs(err)
			res["out"] = string(n)
		case "time":
			var t time.Time
			err := t.UnmarshalJSON([]byte(unhex(r.Hex)))
			res["err"] = errs(err)
			if err == nil {
				t = t.UTC()
				res["ts"] = fmt.Sprintf("%d %d", t.Unix(), t.Nanosecond())
				res["zero"] = t.IsZero()
			}
		case "encode":
			f := streamproto.Flags{
				Name:        streamproto.StreamNameFlag(r.Name),
				ContentType: r.ContentType,
				Timestamp:   clockflag.Time(time.Unix(r.Sec, r.Nsec)),
				Tags:        r.Tags,
			}
			if r.Type != "" {
				if err := f.Type.Set(r.Type); err != nil {
					panic(err)
				}
			}
			var buf bytes.Buffer
			err := f.WriteHandshake(&buf)
			res["err"] = errs(err)
			res["hex"] = hex.EncodeToString(buf.Bytes())
		}
		out.Encode(res)
	}
}
