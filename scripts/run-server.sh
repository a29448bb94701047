#!/usr/bin/env bash
# The main job: install what is missing, build (Release), start cgelu-server with gRPC on
# 0.0.0.0:8001 and Prometheus metrics on 0.0.0.0:8002. Extra arguments go to cgelu-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec "${BUILD_DIR:-build}/server/cgelu-server" --grpc-address 0.0.0.0:8001 \
  --metrics-address 0.0.0.0:8002 "$@"
