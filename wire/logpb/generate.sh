#!/bin/sh
# Regenerates the checked-in Python protobuf modules from the .proto files.
# Dev-time only: needs grpcio-tools (pip install grpcio-tools); run from anywhere.
set -eu
cd "$(dirname "$0")/../.."
python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. wire/logpb/log.proto wire/logpb/butler.proto
