#!/usr/bin/env bash
# Configures cgelu (configure only, nothing is built) into a temporary folder and checks what CMake
# reports about the CUDA kernel.
#   configure_test.sh without|with CMAKE GENERATOR SOURCE_DIR
# without: no nvcc anywhere CMake looks (CGELU_CUDA_ROOT is an empty folder, nvcc is hidden from
#          PATH, CUDACXX and CUDA_PATH are unset): configuring succeeds and reports CUDA kernel OFF.
# with:    nvcc in /usr/local/cuda, found through CGELU_CUDA_ROOT alone (still hidden from PATH):
#          reports CUDA kernel ON. Exits 77 (CTest: skipped) where /usr/local/cuda/bin/nvcc is
#          missing.
set -euo pipefail
mode=$1 cmake=$2 generator=$3 source=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ $mode == with ]]; then
  if [[ ! -x /usr/local/cuda/bin/nvcc ]]; then
    echo "configure_test: no /usr/local/cuda/bin/nvcc on this machine; skipped"
    exit 77
  fi
  cuda_root=/usr/local/cuda expected=ON
else
  mkdir "$work/empty-cuda"
  cuda_root=$work/empty-cuda expected=OFF
fi

# PATH with every nvcc hidden: a folder holding one is replaced by a mirror of its other entries.
path=()
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
  if [[ -n $dir && -e $dir/nvcc ]]; then
    mirror=$(mktemp -d "$work/path.XXXX")
    for entry in "$dir"/*; do
      [[ $(basename "$entry") == nvcc ]] || ln -s "$entry" "$mirror/"
    done
    dir=$mirror
  fi
  path+=("$dir")
done
new_path=$(IFS=:; echo "${path[*]}")

log=$work/configure.log
start=$SECONDS
if ! env -u CUDACXX -u CUDA_PATH -u CUDAToolkit_ROOT PATH="$new_path" \
    "$cmake" -S "$source" -B "$work/build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
    -DCGELU_BUILD_TESTS=OFF -DCGELU_BUILD_BENCHMARKS=OFF -DCGELU_WITH_TORCH=OFF \
    -DCGELU_CUDA_ROOT="$cuda_root" > "$log" 2>&1; then
  cat "$log"
  echo "configure_test: FAIL: configuring ($mode nvcc) failed"
  exit 1
fi
reported=$(grep -o 'cgelu: CUDA kernel [A-Z]*' "$log" || true)
if [[ $reported != "cgelu: CUDA kernel $expected" ]]; then
  cat "$log"
  echo "configure_test: FAIL: expected 'cgelu: CUDA kernel $expected', CMake said '$reported'"
  exit 1
fi
echo "configure_test: $mode nvcc: configured in $((SECONDS - start)) s, $reported"
