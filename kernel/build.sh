#!/usr/bin/env bash
# Builds the guest kernel from Debian's linux-source package, offline, and adds
# it to the kernel catalogue as kernels/cz-<source version>-<config hash>/.
#
#   kernel/build.sh           build when the catalogue lacks this config's kernel
#   kernel/build.sh --force   rebuild even when it is there
#   kernel/build.sh --print   print the catalogue entry name and exit
#
# It applies kernel/patches/*.patch to the source (in name order), starts
# from `make tinyconfig`, merges kernel/config-fragment, runs
# `make olddefconfig`, and stops with an error naming every fragment line the
# source did not keep (the fragment and the source version are out of step).
# The result is an uncompressed vmlinux booted through its PVH entry point,
# which boots fastest under QEMU's TCG (see shared/FACTS.md). The build tree
# stays in <state root>/kernels/.build so a config change rebuilds in seconds.
# A first build takes about 5 minutes on 2 idle cores (docs/architecture.md
# gives what each part of the fragment costs).
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
shopt -s nullglob
patches=("$here"/patches/*.patch)
hash=$(cat "$fragment" "$0" "${patches[@]}" | sha256sum | cut -c1-10)
name="cz-${version%%-*}-$hash"
entry="$ROOT/kernels/$name"
if $print; then echo "$name"; exit 0; fi
if [ -f "$entry/vmlinux" ] && ! $force; then
  say "$name is in the catalogue"
  exit 0
fi

for tool in make gcc flex bison bc patch; do
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

# The tree keeps a copy of the patches it carries in .cz-patches: another
# set is taken off (last first) and this one put on, so a patch change
# rebuilds only what it touches. A tree a patch fails on is dropped.
carried="$tree/.cz-patches"
if ! diff -rq "$here/patches" "$carried" >/dev/null 2>&1; then
  say "patching the source"
  if [ -d "$carried" ]; then
    for patch in $(printf '%s\n' "$carried"/*.patch | sort -r); do
      patch -s -R -p1 -d "$tree" <"$patch" || { rm -rf "$tree"; die "could not take $patch off the source; run again to unpack it afresh"; }
    done
  fi
  rm -rf "$carried"
  mkdir "$carried"
  for patch in "${patches[@]}"; do
    patch -s -N -p1 -d "$tree" <"$patch" || { rm -rf "$tree"; die "$patch does not apply to $source_pkg $version"; }
    cp "$patch" "$carried/"
  done
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
rm -rf "$entry"
mv "$partial" "$entry"
trap - EXIT
# Entries of earlier versions of this recipe are superseded.
for old in "$ROOT"/kernels/cz-*; do
  [ "$old" = "$entry" ] || rm -rf "$old"
done
say "added $name (release $release) to $ROOT/kernels"
