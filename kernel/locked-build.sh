#!/usr/bin/env bash
# Runs kernel/build.sh under a lock on <state root>/kernels/.build.lock, so
# only one build runs at a time: `make demo` starts one in the background,
# and a `make test` meanwhile waits for it instead of building the same tree.
# (The lock lives here, not in build.sh, whose text names the kernel it makes.)
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  root=${CZ_ROOT:-/var/lib/containerization}
else
  root=${CZ_ROOT:-${XDG_DATA_HOME:-$HOME/.local/share}/containerization}
fi
mkdir -p "$root/kernels"
exec 9>"$root/kernels/.build.lock"
if ! flock -n 9; then
  echo "kernel: another build is running; waiting for it (log: $root/kernels/build.log)"
  flock 9
fi
exec "$(dirname "$0")/build.sh" "$@"
