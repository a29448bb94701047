#!/usr/bin/env bash
# Installs every Debian package cgelu needs to build, test and run. Idempotent: installs only what
# is missing, so a second run takes seconds. Run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev
  prometheus-cpp-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libtbb-dev
  python3 python3-numpy python3-yaml
)
# LibTorch (the test oracle, the torch backend and module) unless the build turns it off, as the
# default container image does (CGELU_WITH_TORCH=OFF, the CMake option's spelling).
case ${CGELU_WITH_TORCH:-ON} in
  OFF|off|0|NO|no|FALSE|false) ;;
  *) packages+=(libtorch-dev) ;;
esac
if [[ ${CGELU_WITH_PROMETHEUS:-1} == 1 ]]; then
  packages+=(prometheus)  # promtool and the Prometheus server used by the observability tests
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=()
  [[ $(id -u) == 0 ]] || SUDO=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  echo "install-deps: packages done"
fi

# Real third-party clients for the compatibility tests (Triton's Python gRPC client, gRPC
# reflection), from PyPI, in a virtual environment inside the checkout (.venv-tests).
# CGELU_WITH_PYTHON_CLIENTS=0 skips it (the container image does).
if [[ ${CGELU_WITH_PYTHON_CLIENTS:-1} == 1 ]]; then
  venv="$(cd "$(dirname "$0")/.." && pwd)/.venv-tests"
  requirements="$(dirname "$0")/../tests/compat/requirements.txt"
  stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
  if [[ ! -f $stamp ]]; then
    echo "install-deps: creating $venv with $(tr '\n' ' ' < "$requirements")"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
fi
