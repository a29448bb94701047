#!/usr/bin/env bash
# Install what is missing, build everything, run the whole normal test suite (CTest).
# Slow suites (label "slow": exhaustive ULP sweep, soak, container image) are excluded; see README.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 900 --label-exclude slow -j "$(nproc)"
