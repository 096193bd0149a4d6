#!/usr/bin/env bash
# Builds the guest kernel from Debian's linux-source package, offline, and adds
# it to the kernel catalogue as kernels/cz-<source version>-<config hash>/.
#
#   kernel/build.sh           build when the catalogue lacks this config's kernel
#   kernel/build.sh --force   rebuild even when it is there
#   kernel/build.sh --print   print the catalogue entry name and exit
#
# It starts from `make tinyconfig`, merges kernel/config-fragment, runs
# `make olddefconfig`, and stops with an error naming every fragment line the
# source did not keep (the fragment and the source version are out of step).
# The result is an uncompressed vmlinux booted through its PVH entry point,
# which boots fastest under QEMU's TCG (see shared/FACTS.md). The build tree
# stays in <state root>/kernels/.build so a config change rebuilds in seconds.
# A first build takes about 7 minutes on 2 cores.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/config-fragment"
say() { echo "kernel: $*"; }
die() { echo "kernel: error: $*" >&2; exit 1; }

force=false
print=false
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    --print) print=true ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$arg' (try --help)" ;;
  esac
done

if [ "$(id -u)" = 0 ]; then
  ROOT=${CZ_ROOT:-/var/lib/containerization}
else
  ROOT=${CZ_ROOT:-${XDG_DATA_HOME:-$HOME/.local/share}/containerization}
fi

# The fragment names the source package it was made for; the two move together.
source_pkg=$(sed -n 's/^# Made for: *//p' "$fragment")
[ -n "$source_pkg" ] || die "$fragment lacks its '# Made for: linux-source-X.Y' line"
version=$(dpkg-query -W -f='${Version}' "$source_pkg" 2>/dev/null) ||
  die "$source_pkg is not installed, but $fragment was made for it: run scripts/setup"
tarball="/usr/src/$source_pkg.tar.xz"
[ -f "$tarball" ] || die "$tarball is missing: reinstall $source_pkg"
hash=$(cat "$fragment" "$0" | sha256sum | cut -c1-10)
name="cz-${version%%-*}-$hash"
entry="$ROOT/kernels/$name"
if $print; then echo "$name"; exit 0; fi
if [ -f "$entry/vmlinux" ] && ! $force; then
  say "$name is in the catalogue"
  exit 0
fi

for tool in make gcc flex bison bc; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup"
done

build="$ROOT/kernels/.build"
tree="$build/$source_pkg-$version"
mkdir -p "$build"
if [ ! -f "$tree/Makefile" ]; then
  say "unpacking $tarball"
  rm -rf "$tree" "$build/.unpack"
  mkdir -p "$build/.unpack"
  tar -xf "$tarball" -C "$build/.unpack"
  mv "$build/.unpack/$source_pkg" "$tree"
  rmdir "$build/.unpack"
fi

cd "$tree"
make -s tinyconfig >/dev/null
# merge_config.sh wants disabled symbols spelled as Kconfig writes them.
sed -E 's/^(CONFIG_[A-Z0-9_]+)=n$/# \1 is not set/' "$fragment" >"$build/fragment.config"
scripts/kconfig/merge_config.sh -m .config "$build/fragment.config" >/dev/null
make -s olddefconfig >/dev/null

lost=()
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=n) grep -q "^${line%=n}=" .config && lost+=("$line") ;;
    CONFIG_*=*) grep -qx "$line" .config || lost+=("$line") ;;
  esac
done <"$fragment"
if [ ${#lost[@]} -gt 0 ]; then
  die "$source_pkg $version did not keep these lines of $fragment: ${lost[*]}; update the fragment for this source"
fi

say "building $name with $(nproc) jobs"
make -s -j"$(nproc)" vmlinux
release=$(make -s kernelrelease)

partial=$(mktemp -d "$ROOT/kernels/.partial-XXXXXX")
trap 'rm -rf "$partial"' EXIT
cp vmlinux "$partial/vmlinux"
cp .config "$partial/config"
cp "$fragment" "$partial/config-fragment"
echo "$release" >"$partial/release"
echo "$source_pkg $version (config-fragment $hash)" >"$partial/package"
# Under TCG the guest has no TSC-deadline timer, so this kernel would spend
# about 0.2 s calibrating its local APIC timer against the PIT; the PIT alone
# serves it well (crates/vmm reads this file for TCG boots only).
echo noapictimer >"$partial/tcg-cmdline"
rm -rf "$entry"
mv "$partial" "$entry"
trap - EXIT
# Entries of earlier versions of this recipe are superseded.
for old in "$ROOT"/kernels/cz-*; do
  [ "$old" = "$entry" ] || rm -rf "$old"
done
say "added $name (release $release) to $ROOT/kernels"
