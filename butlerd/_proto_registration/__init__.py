"""``logdog.Registration`` messages (see registration.proto; generated, checked in)."""

from butlerd._proto_registration.registration_pb2 import (
    RegisterPrefixRequest,
    RegisterPrefixResponse,
)

__all__ = ["RegisterPrefixRequest", "RegisterPrefixResponse"]
