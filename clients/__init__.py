"""Open LogDog Butler log streams from Python, byte-for-byte like the Go client.

Blocking::

    from clients import StreamClient

    client = StreamClient.from_env()          # or StreamClient("unix:/path/to/sock")
    with client.text("stdout") as out:
        out.write("hello\\n")
    with client.datagram("build.proto", content_type="application/x-proto") as dg:
        dg.write_datagram(b"...")
    with client.text("child", for_process=True) as f:
        subprocess.run(["make"], stdout=f)

asyncio::

    client = AsyncStreamClient.from_env()
    async with client.text("stdout") as out:
        await out.write("hello\\n")

Only the standard library and ``wire`` are used.
"""

from ._options import Timestamp
from .aio import AsyncDatagramWriter, AsyncStreamClient, AsyncStreamWriter, Opening
from .bootstrap import Bootstrap
from .errors import BootstrapError, InvalidStreamError, NotBootstrapped, StreamClientError, StreamServerError
from .streamclient import DatagramWriter, StreamClient, StreamWriter

__all__ = [
    "AsyncDatagramWriter",
    "AsyncStreamClient",
    "AsyncStreamWriter",
    "Bootstrap",
    "BootstrapError",
    "DatagramWriter",
    "InvalidStreamError",
    "NotBootstrapped",
    "Opening",
    "StreamClient",
    "StreamClientError",
    "StreamServerError",
    "StreamWriter",
    "Timestamp",
]
