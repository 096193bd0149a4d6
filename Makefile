# The project's commands. README.md names `make demo` and `make test`.
MUSL_TARGET := x86_64-unknown-linux-musl

.PHONY: setup build test lint bench demo fmt kernel fuzz-smoke

## Install what the build and tests need (idempotent; see scripts/setup --help).
setup:
	scripts/setup

## Build every crate, and vminitd as the static musl binary the guest runs.
build:
	cargo build --workspace --all-targets
	cargo build -p vminitd --target $(MUSL_TARGET)

## The optimized guest kernel (kernel/build.sh; about 5 minutes the first time on 2 idle cores, cached after).
kernel: setup
	kernel/locked-build.sh

## Set up, then run the whole test suite: unit, integration and doc tests.
## Both kinds of guest kernel are booted, so the built one is made when missing.
test: setup kernel
	scripts/setup --vsock-helper
	cargo build -p vminitd --target $(MUSL_TARGET)
	cargo test --workspace

## Formatting and clippy, warnings denied.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Side-by-side benchmarks against the peers (bench/README.md).
bench: setup
	bench/run

## The main job: a loopback registry seeded with busybox, then
## `cctl run --rm <registry>/demo/busybox echo hello from a VM` (needs root).
## It runs on Debian's cloud kernel when the fast kernel is not built yet,
## and then starts building that in the background.
demo: setup
	scripts/demo

fmt:
	cargo fmt --all

## Run each fuzz target (crates/oci/fuzz: references, manifests, the host unpack and the ext4
## writer's layers) for a short time (installs nightly Rust and cargo-fuzz first).
fuzz-smoke:
	scripts/setup --fuzz
	cd crates/oci/fuzz && for target in reference manifest unpack ext4_layers; do \
	  cargo +nightly fuzz run $$target -- -max_total_time=$${FUZZ_SECONDS:-20} || exit 1; \
	done
