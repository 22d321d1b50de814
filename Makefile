# The two quick-start commands are `make demo` and `make test`; both run `make setup` first,
# which installs what is missing (idempotently) and builds target/release/weir.

CARGO_BUILD_JOBS ?= 2
export CARGO_BUILD_JOBS

.PHONY: setup demo test lint bench

setup:
	scripts/setup

demo: setup
	scripts/demo

test: setup
	cargo test --release --workspace --no-fail-fast

lint:
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings

bench: setup
	target/release/weir bench topology
