#!/usr/bin/env bash
# Prints, one per line as NAME=VERSION, the Debian packages that provide the shared libraries the
# given executables load (found with ldd, mapped with dpkg -S). The Dockerfile's runtime stage
# installs exactly this list, so the image follows the build's real link line instead of a
# hand-kept copy of it. Exits non-zero if a library is missing or belongs to no package.
set -euo pipefail
(($#)) || { echo "usage: $0 EXECUTABLE..." >&2; exit 2; }

libs=()
for exe in "$@"; do
  [[ -f $exe && -x $exe ]] || { echo "runtime-packages: $exe is not an executable file" >&2; exit 1; }
  if ldd "$exe" | grep 'not found' >&2; then
    echo "runtime-packages: $exe has unresolved libraries" >&2
    exit 1
  fi
  mapfile -t -O "${#libs[@]}" libs < <(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)

# Where dpkg may have recorded each library: as ldd names it or as its symlink target, each with
# and without the /usr prefix (Debian's merged /usr makes both spellings reach the same file).
candidates() {
  local path
  for path in "$1" "$(readlink -f "$1")"; do
    printf '%s\n' "$path" "/usr${path}" "${path#/usr}"
  done
}
mapfile -t all < <(for lib in "${libs[@]}"; do candidates "$lib"; done | sort -u)

# One dpkg -S call for every candidate: it reads its file lists once, not once per library.
declare -A owner=()
while IFS= read -r line; do
  [[ $line == diversion* ]] && continue
  pkg=${line%%: /*}
  pkg=${pkg%%,*}
  owner["/${line#*: /}"]=${pkg%%:*}
done < <(dpkg -S "${all[@]}" 2>/dev/null || true)

declare -A packages=()
for lib in "${libs[@]}"; do
  found=''
  while read -r path; do
    if [[ -n ${owner[$path]:-} ]]; then found=${owner[$path]}; break; fi
  done < <(candidates "$lib")
  [[ -n $found ]] || { echo "runtime-packages: no package owns $lib" >&2; exit 1; }
  packages[$found]=1
done
for pkg in "${!packages[@]}"; do
  echo "${pkg}=$(dpkg-query -W -f='${Version}' "$pkg")"
done | sort
