"""End to end: ``butlerd run -- CMD`` as a real process wrapping real children."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


class Run:
    """Runs ``butlerd ... run`` with a directory output and a private TMPDIR,
    so a test can tell that no socket was left behind."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.out = tmp_path / "out"
        # Short, so the socket path stays under 104 bytes.
        self.tmpdir = Path(tempfile.mkdtemp(prefix="brun", dir="/tmp"))
        self.env = {**os.environ, "TMPDIR": str(self.tmpdir), "PYTHONPATH": str(REPO)}

    def args(self, *args: str, output: bool = True) -> list[str]:
        cmd = [sys.executable, "-m", "butlerd"]
        if output:
            cmd += ["-output", f"directory,path={self.out}"]
        return cmd + list(args)

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 30,
                 output: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.args(*args, output=output), input=input, capture_output=True,
                              timeout=timeout, env=self.env, cwd=cwd or self.tmp)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.args(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.env, cwd=self.tmp)

    def read(self, name: str) -> bytes:
        return (self.out / name).read_bytes()

    def meta(self, name: str) -> dict:
        d, _, leaf = name.rpartition("/")
        return json.loads((self.out / d / f".meta.{leaf}").read_text())

    def leftovers(self) -> list[str]:
        return os.listdir(self.tmpdir)


@pytest.fixture
def run(tmp_path: Path):
    r = Run(tmp_path)
    yield r
    shutil.rmtree(r.tmpdir, ignore_errors=True)


def sh(script: str) -> list[str]:
    return ["--", "sh", "-c", script]


def py(code: str) -> list[str]:
    return ["--", sys.executable, "-c", textwrap.dedent(code)]


# --- stdout / stderr -------------------------------------------------------------------------


def test_named_stdout_and_stderr_become_streams(run):
    p = run("run", "-stdout", "name=logs/out,tag=k=v", "-stderr", "name=logs/err,type=binary",
            *sh("echo one; echo two >&2; printf 'three\\r\\nfour'"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""
    assert run.read("logs/out") == b"one\nthree\nfour\n"
    assert run.read("logs/err") == b"two\n"
    assert run.meta("logs/out")["tags"] == {"k": "v"}
    err_meta = run.meta("logs/err")
    assert err_meta["stream_type"] == "BINARY"
    # Go's flag quirk: the content type stays text unless given.
    assert err_meta["content_type"] == "text/plain; charset=utf-8"
    assert run.leftovers() == [], "the socket and its directory are removed"


def test_repeated_stream_flags_accumulate_like_go(run):
    p = run("run", "-stdout", "name=o", "-stdout", "tag=a=1", "-stdout", "tag=b=2,content-type=x/y",
            *sh("echo hi"))
    assert p.returncode == 0, p.stderr
    assert run.meta("o")["tags"] == {"a": "1", "b": "2"}
    assert run.meta("o")["content_type"] == "x/y"


def test_unnamed_stdout_and_stderr_pass_through(run):
    p = run("run", *sh("echo to-out; echo to-err >&2"))
    assert p.returncode == 0
    assert p.stdout == b"to-out\n"
    assert b"to-err\n" in p.stderr
    assert not run.out.exists() or not any(run.out.iterdir())


def test_attach_false_sends_output_nowhere(run):
    p = run("run", "-attach=false", "-stdout", "name=o", *sh("echo lost; echo lost >&2"))
    assert p.returncode == 0
    assert b"lost" not in p.stdout + p.stderr
    assert not (run.out / "o").exists()


def test_stdin_is_dev_null_unless_forwarded(run):
    p = run("run", "-stdout", "name=o", *sh("cat; echo end"), input=b"secret\n")
    assert run.read("o") == b"end\n"
    p = run("run", "-forward-stdin", "-stdout", "name=o2", *sh("cat; echo end"), input=b"given\n")
    assert p.returncode == 0
    assert run.read("o2") == b"given\nend\n"


def test_large_fast_output_is_complete(run):
    # Far more than the 5 MiB a stream buffers: the pipe must be throttled, not dropped.
    p = run("run", "-stdout", "name=big,type=binary",
            *py("import sys\nfor i in range(160):\n    sys.stdout.buffer.write(bytes([i]) * 65536)"))
    assert p.returncode == 0, p.stderr
    data = run.read("big")
    assert len(data) == 160 * 65536
    assert data == b"".join(bytes([i]) * 65536 for i in range(160))


# --- exit codes and -result-path -------------------------------------------------------------


@pytest.mark.parametrize(("script", "code", "return_code"), [
    ("exit 0", 0, 0),
    ("exit 3", 3, 3),
    ("kill -KILL $$", 255, -1),
    ("kill -TERM $$", 255, -1),
])
def test_exit_code_is_the_childs(run, script, code, return_code):
    result = run.tmp / "result.json"
    p = run("run", "-result-path", str(result), "-stdout", "name=o", *sh("echo before; " + script))
    assert p.returncode == code, p.stderr
    assert run.read("o") == b"before\n"
    assert json.loads(result.read_text()) == {
        "return_code": return_code, "command": [shutil.which("sh"), "-c", "echo before; " + script]}
    assert run.leftovers() == []


def test_result_file_bytes_are_what_go_writes(run):
    result = run.tmp / "result.json"
    p = run("run", "-result-path", str(result), "--", "echo", "<a&b>", "é", "q\"")
    assert p.returncode == 0
    echo = shutil.which("echo")
    assert result.read_bytes() == (
        '{"return_code":0,"command":["' + echo + '","\\u003ca\\u0026b\\u003e","é","q\\""]}\n'
    ).encode()


def test_command_not_found_is_a_clear_error_and_leaves_nothing(run):
    result = run.tmp / "result.json"
    p = run("run", "-result-path", str(result), "--", "no-such-command-xyz", "arg")
    assert p.returncode == 250
    assert b'"no-such-command-xyz": executable file not found in $PATH' in p.stderr
    assert run.leftovers() == []
    assert not result.exists(), "nothing ran, so there is no result"


def test_command_path_that_is_not_executable(run):
    f = run.tmp / "script.sh"
    f.write_text("echo hi\n")
    p = run("run", "--", str(f))
    assert p.returncode == 250
    assert b"permission denied" in p.stderr
    assert run.leftovers() == []


def test_no_command_is_a_usage_error(run):
    assert run("run").returncode == 2
    assert run("run", "--").returncode == 2


def test_chdir(run):
    d = run.tmp / "work"
    d.mkdir()
    p = run("run", "-chdir", str(d), *sh("pwd"))
    assert p.returncode == 0
    assert p.stdout.decode().strip() == str(d)
    p = run("run", "-chdir", str(run.tmp / "missing"), *sh("pwd"))
    assert p.returncode == 250
    assert run.leftovers() == []
    p = run("run", "-chdir", str(run.tmp / "out" / ".." / "work" / "x"), *sh("pwd"))
    assert p.returncode == 250


def test_json_args_path(run):
    args = run.tmp / "args.json"
    args.write_text(json.dumps(["sh", "-c", "echo from json: $0", "zero"]))
    p = run("run", "-json-args-path", str(args))
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"from json: zero\n"
    # Together with positional arguments: a usage error.
    assert run("run", "-json-args-path", str(args), "--", "true").returncode == 2
    for bad in ("", "{}", '["a", 1]', "[not json"):
        args.write_text(bad)
        assert run("run", "-json-args-path", str(args)).returncode == 2, bad
    assert run("run", "-json-args-path", str(run.tmp / "missing.json")).returncode == 2
    assert run.leftovers() == []


# --- the environment and the socket ----------------------------------------------------------


def test_child_environment(run):
    p = run("run", *py("""
        import json, os
        print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("LOGDOG_")}))
        """))
    assert p.returncode == 0
    env = json.loads(p.stdout)
    sock = env.pop("LOGDOG_STREAM_SERVER_PATH")
    assert sock.startswith("unix:" + str(run.tmpdir) + "/")
    assert len(sock) - len("unix:") <= 104
    assert env == {"LOGDOG_COORDINATOR_HOST": f"file://{run.out}"}
    assert not os.path.exists(sock[len("unix:"):])


RAW_CLIENT = """
import json, os, socket, sys, time
sys.path.insert(0, {repo!r})
from wire.varint import encode_uvarint

def open_stream(name, type_="text"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.environ["LOGDOG_STREAM_SERVER_PATH"][len("unix:"):])
    flags = json.dumps({{"name": name, "type": type_}}).encode()
    s.sendall(b"BTLR1\\x1e" + encode_uvarint(len(flags)) + flags)
    return s
"""


def test_child_opens_its_own_streams(run):
    code = RAW_CLIENT.format(repo=str(REPO)) + textwrap.dedent("""
        with open_stream("own/text") as s:
            s.sendall(b"line 1\\nline 2\\n")
        with open_stream("own/bin", "binary") as s:
            s.sendall(bytes(range(256)))
        print("done")
        """)
    p = run("run", "-stdout", "name=stdout", "--", sys.executable, "-c", code)
    assert p.returncode == 0, p.stderr
    assert run.read("own/text") == b"line 1\nline 2\n"
    assert run.read("own/bin") == bytes(range(256))
    assert run.read("stdout") == b"done\n"


def test_streams_still_open_when_the_child_exits_are_waited_for(run):
    # The child leaves a grandchild (detached from its pipes) that keeps a
    # socket stream open and writes for a while after the child exited.
    grandchild = RAW_CLIENT.format(repo=str(REPO)) + textwrap.dedent("""
        with open_stream("late") as s:
            for i in range(5):
                time.sleep(0.2)
                s.sendall(b"tick %d\\n" % i)
                if i == 2:  # the child is gone by now; the socket still serves
                    with open_stream("later") as s2:
                        s2.sendall(b"opened after the child exited\\n")
        """)
    code = textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", {grandchild!r}],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # the grandchild's stream is open
        """)
    # Without a signal, run waits for clients however long -drain-timeout is.
    p = run("-drain-timeout", "100ms", "run", "--", sys.executable, "-c", code)
    assert p.returncode == 0, p.stderr
    assert run.read("late") == b"".join(b"tick %d\n" % i for i in range(5))
    assert run.read("later") == b"opened after the child exited\n"
    assert run.leftovers() == []


def test_child_uses_the_client_helper(run):
    p = run("run", *py("""
        import subprocess
        from clients import StreamClient
        client = StreamClient.from_env()
        with client.text("helper/text", tags={"t": "1"}) as w:
            w.write("via helper\\n")
        with client.text("helper/proc", for_process=True) as f:
            subprocess.run(["echo", "from a subprocess"], stdout=f, check=True)
        """))
    assert p.returncode == 0, p.stderr
    assert run.read("helper/text") == b"via helper\n"
    assert run.meta("helper/text")["tags"] == {"t": "1"}
    assert run.read("helper/proc") == b"from a subprocess\n"


def test_grandchildren_writing_to_the_same_stdout_stream(run):
    # The child exits at once; its background children hold the pipe, and
    # run waits for them (as logdog_butler does).
    script = "for i in 1 2 3; do (sleep 0.$i; echo grandchild $i) & done; echo child"
    p = run("run", "-stdout", "name=o", *sh(script))
    assert p.returncode == 0
    lines = run.read("o").decode().splitlines()
    assert sorted(lines) == ["child", "grandchild 1", "grandchild 2", "grandchild 3"]
    assert lines[0] == "child"


def test_duplicate_stream_names_are_refused(run):
    p = run("run", "-stdout", "name=same", "-stderr", "name=same", *sh("echo x"))
    assert p.returncode == 250
    assert b"same" in p.stderr
    assert run.leftovers() == []


def test_invalid_stream_name_is_a_usage_error(run):
    p = run("run", "-stdout", "name=/bad", *sh("true"))
    assert p.returncode == 2
    assert b"-stdout" in p.stderr


def test_default_output_is_butlerd_logs_in_the_working_directory(run):
    p = run("run", "-stdout", "name=o", *sh("echo default"), output=False)
    assert p.returncode == 0, p.stderr
    assert (run.tmp / "butlerd-logs" / "o").read_bytes() == b"default\n"


# --- signals ---------------------------------------------------------------------------------


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_is_forwarded_and_output_flushed(run, sig):
    ready = run.tmp / "ready"
    script = (f"trap 'echo got signal; exit 7' {sig.name[3:]}; echo started; touch {ready}; "
              "while :; do sleep 0.05; done")
    p = run.popen("-output-max-buffer-age", "1h", "run", "-stdout", "name=o", *sh(script))
    _wait_for(ready, p)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 7, err
    assert run.read("o") == b"started\ngot signal\n"
    assert run.leftovers() == []


def test_child_ignoring_sigterm_is_killed_after_the_grace(run):
    ready = run.tmp / "ready"
    script = f"trap '' TERM; echo started; touch {ready}; while :; do sleep 0.05; done"
    result = run.tmp / "result.json"
    p = run.popen("run", "-kill-grace", "300ms", "-result-path", str(result), "-stdout", "name=o",
                  *sh(script))
    _wait_for(ready, p)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 255, err
    assert time.monotonic() - t0 < 10
    assert run.read("o") == b"started\n"
    assert json.loads(result.read_text())["return_code"] == -1


def test_signal_flushes_socket_streams_of_the_child(run):
    ready = run.tmp / "ready"
    code = RAW_CLIENT.format(repo=str(REPO)) + textwrap.dedent(f"""
        import signal
        s = open_stream("sock")
        s.sendall(b"written before the signal\\n")
        def on_term(*_):
            s.sendall(b"and at the signal\\n")
            s.close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        open({str(ready)!r}, "w").close()
        while True:
            time.sleep(0.05)
        """)
    p = run.popen("-output-max-buffer-age", "1h", "run", "--", sys.executable, "-c", code)
    _wait_for(ready, p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert run.read("sock") == b"written before the signal\nand at the signal\n"


def test_second_signal_exits_1_at_once(run):
    ready = run.tmp / "ready"
    script = f"trap '' TERM; echo $$ > {ready}.tmp; mv {ready}.tmp {ready}; while :; do sleep 0.05; done"
    p = run.popen("run", "-kill-grace", "60s", *sh(script))
    _wait_for(ready, p)
    p.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    try:
        assert p.wait(timeout=10) == 1
    finally:
        # The child outlives an abrupt exit, as with Go (and holds our pipes).
        os.kill(int(ready.read_text()), signal.SIGKILL)
    _, err = p.communicate(timeout=10)
    assert b"second signal" in err
