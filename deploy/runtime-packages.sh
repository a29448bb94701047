#!/usr/bin/env bash
# Prints, one per line as NAME=VERSION, the Debian packages that provide the shared libraries the
# given executables load (found with ldd, mapped with dpkg -S). The Dockerfile's runtime stage
# installs exactly this list, so the image follows the build's real link line instead of a
# hand-kept copy of it. Exits non-zero if a library is missing or belongs to no package.
set -euo pipefail
(($#)) || { echo "usage: $0 EXECUTABLE..." >&2; exit 2; }

owner() {  # the package that ships library path $1; Debian's usrmerge may list it under /usr or not
  local candidates=("$1" "$(readlink -f "$1")") path
  for path in "${candidates[@]}"; do
    for p in "$path" "/usr${path}" "${path#/usr}"; do
      dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 && return 0
    done
  done
  return 1
}

declare -A packages=()
for exe in "$@"; do
  if ldd "$exe" | grep -q 'not found'; then
    ldd "$exe" | grep 'not found' >&2
    exit 1
  fi
  while read -r lib; do
    pkg=$(owner "$lib") || { echo "runtime-packages: no package owns $lib" >&2; exit 1; }
    packages[$pkg]=1
  done < <(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
for pkg in "${!packages[@]}"; do
  echo "${pkg}=$(dpkg-query -W -f='${Version}' "$pkg")"
done | sort
