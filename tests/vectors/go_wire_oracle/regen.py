"""Rebuild ../go_wire_oracle.json: random wire inputs answered by the real Go code.

Usage: python tests/vectors/go_wire_oracle/regen.py /tmp/go_wire_oracle
(build the oracle first, see main.go). The inputs are random but seeded, so a
rerun with the same Go code gives the same file.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "go_wire_oracle.json"
MAGIC = b"BTLR1\x1e"


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def generate(rng: random.Random) -> list[dict]:
    cases: list[dict] = []
    alph = [b"a", b"Z", b"0", b"/", b"_", b".", b"-", b":", b"+", b" ", b"\xc3\xa9", b"\xff", b"\xe2\x82",
            b"\xed\xa0\x80", b"\xf0\x9f\x98\x84", b"\x00", b"^"]

    good = [b"a", b"Z", b"0", b"a", b"b9", b"/", b".", b"_", b"-", b":"]

    def rname() -> bytes:
        pool = alph if rng.random() < 0.6 else good
        return b"".join(rng.choice(pool) for _ in range(rng.randint(0, 8)))

    for _ in range(300):
        cases.append({"op": "name", "hex": rname().hex()})
    for _ in range(100):
        value = b"v" * (rng.choice([4095, 4096, 4097]) if rng.random() < 0.05 else rng.randint(0, 2)) + rname()
        cases.append({"op": "tag", "hex": rname().hex(), "hex2": value.hex()})
    palph = [b"a", b"z", b"A", b"0", b"-", b"_", b".", b"\xc3\xa9", b"\xff", b"@"]
    for _ in range(100):
        cases.append({"op": "project", "hex": b"".join(rng.choice(palph) for _ in range(rng.randint(0, 5))).hex()})
    sega = ["a", "B", "9", "", "/", "!", " ", "é", ".", "_", ":", "-"]
    for _ in range(120):
        fill = rng.choice(["FILL", "", "_x", "a/b", "f"])
        segs = ["".join(rng.choice(sega) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 3))]
        cases.append({"op": "makename", "hex": fill.encode().hex(), "segs": segs})

    bases = ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789Z", "2024-01-02T3:04:05,5+02:00",
             "0001-01-01T00:00:00Z", "2024-02-29T23:59:59.9999999999-24:00", "2023-02-29T00:00:00Z",
             "9999-12-31T23:59:59+00:60", "0000-01-01T00:00:00+01:00"]
    tch = list("0123456789-:TZ+.,zt ") + ["\\u0030", "\u0661"]

    def mutate(s: str) -> str:
        chars = list(s)
        for _ in range(rng.randint(0, 2)):
            op, i = rng.random(), rng.randint(0, len(chars))
            if op < 0.4 and chars:
                chars[min(i, len(chars) - 1)] = rng.choice(tch)
            elif op < 0.7:
                chars.insert(i, rng.choice(tch))
            elif chars:
                del chars[min(i, len(chars) - 1)]
        return "".join(chars)

    for _ in range(350):
        raw = rng.choice(['"%s"', '"%s"', '"%s"', "%s", '"%s']) % mutate(rng.choice(bases))
        if rng.random() < 0.02:
            raw = "null"
        cases.append({"op": "time", "hex": raw.encode().hex()})

    keys = ["name", "NAME", "Name", "nAme", "contentType", "contenttype", "CONTENTTYPE", "type", "Type", "timestamp",
            "timeſtamp", "TimeStamp", "tags", "Tags", "tagſ", "TAGS", "tee", "x", "naMe\u212a", "ta\u212as"]

    def rvalue(key: str) -> str:
        k = key.lower()
        r = rng.random()
        if r < 0.08:
            return "null"
        if r < 0.12:
            return rng.choice(["5", "true", "[]", "{}", '"x"', "1.5e3"])
        if "name" in k:
            if rng.random() < 0.5:
                return json.dumps(rname().decode("utf-8", "surrogateescape"))
            return json.dumps(rng.choice(["a", "u/step", "a/b.c"]))
        if "content" in k:
            return rng.choice(['"text/x"', '""', '"a<b>\\u00e9"', '"\\ud800x"', '"\xff"'])
        if k == "type":
            return rng.choice(['"text"', '"binary"', '"datagram"', '"Text"', '""', '"bin\\u0061ry"'])
        if "time" in k:
            return '"%s"' % mutate(rng.choice(bases))
        if "tag" in k:
            items = []
            for _ in range(rng.randint(0, 3)):
                kk = rng.choice(['"k"', '"K"', '"_k"', '""', '"a/b"', '"k"', '"' + "k" * 65 + '"', '"\\u00e9"'])
                vv = rng.choice(['"v"', '""', "null", "5", '"' + "v" * 4097 + '"', '"\xff"', '"\\udc00"'])
                items.append(kk + ":" + vv)
            return "{" + ",".join(items) + "}"
        return rng.choice(["1", '"s"', '{"a":[1,{"b":null}]}', "[]"])

    for _ in range(600):
        members = []
        for _ in range(rng.randint(0, 5)):
            key = rng.choice(keys)
            members.append(json.dumps(key, ensure_ascii=rng.random() < 0.5) + rng.choice([":", " : "]) + rvalue(key))
        text = rng.choice(["", " ", "\n"]) + "{" + ",".join(members) + "}" + rng.choice(["", "", " ", "\t\n"])
        r = rng.random()
        if r < 0.03:
            text = text[:-1]
        elif r < 0.05:
            text = "[" + text + "]"
        data = text.encode("utf-8", "surrogateescape").replace("\xff".encode(), b"\xff")
        if len(data) > 1000:
            continue
        cases.append({"op": "handshake", "hex": (MAGIC + uvarint(len(data)) + data).hex()})

    stra = ["a", "<", ">", "&", '"', "\\", "\n", "\x01", "\x7f", "é", "\u2028", "\u2029", "😄", "\b", "\f", "/", " "]
    for _ in range(100):
        ct = "".join(rng.choice(stra) for _ in range(rng.randint(0, 6))) or "x"
        tags = {rng.choice(["a", "b", "k.x", "Z"]): "".join(rng.choice(stra) for _ in range(rng.randint(0, 4)))
                for _ in range(rng.randint(0, 3))}
        cases.append({"op": "encode", "Name": rng.choice(["a", "u/b"]), "ContentType": ct,
                      "Type": rng.choice(["", "text", "binary", "datagram"]),
                      "Sec": rng.randint(-62135596800, 253402300799),
                      "Nsec": rng.choice([0, rng.randint(0, 999999999), 120000000, 5]), "Tags": tags})
    return cases


def main() -> None:
    oracle = sys.argv[1]
    cases = generate(random.Random(20260822))
    inp = "".join(json.dumps(c) + "\n" for c in cases)
    lines = subprocess.run([oracle], input=inp.encode(), capture_output=True, check=True).stdout.decode().splitlines()
    assert len(lines) == len(cases)
    out = []
    for c, line in zip(cases, lines):
        answer = json.loads(line)
        if answer.get("ts"):
            secs, nanos = answer["ts"].split()
            answer["ts"] = str(int(secs) * 10**9 + int(nanos))
        answer.pop("rest", None)
        answer.pop("zero", None)
        out.append({"in": c, "go": answer})
    about = (
        "Answers of the real Go code (go.chromium.org/luci v0.0.0-20260822014153-22eba00a8fe4, go1.26.8) for "
        "seeded random inputs: streamproto.Flags.FromHandshake (op handshake), types.StreamName.Validate (name), "
        "types.ValidateTag (tag), config.ValidateProjectName (project), types.MakeStreamName (makename), "
        "time.Time.UnmarshalJSON (time; ts = UTC ns) and Flags.WriteHandshake (encode). Byte strings are hex. "
        "Made by tests/vectors/go_wire_oracle/regen.py."
    )
    with OUT.open("w") as fh:
        fh.write('{"about": ' + json.dumps(about) + ',\n"cases": [\n')
        fh.write(",\n".join(json.dumps(c, sort_keys=True, separators=(",", ":")) for c in out))
        fh.write("\n]}\n")
    print(f"wrote {len(out)} cases to {OUT}")


if __name__ == "__main__":
    main()
