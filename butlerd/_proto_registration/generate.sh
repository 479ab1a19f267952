#!/bin/sh
# Regenerates registration_pb2.py/.pyi from registration.proto.
# Dev-time only: needs grpcio-tools (pip install grpcio-tools); run from anywhere.
set -eu
cd "$(dirname "$0")/../.."
python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. butlerd/_proto_registration/registration.proto
