#!/usr/bin/env bash
# Installs what is missing, then configures and builds cgelu (Release) in ./build.
#   scripts/build.sh [extra cmake arguments...]
# BUILD_DIR overrides the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
jobs=$(nproc)
cmake --build "$build_dir" --parallel "$jobs"
