# The two quick-start commands are `make demo` and `make test`; both run `make setup` first,
# which installs what is missing (idempotently) and builds target/release/weir.

CARGO_BUILD_JOBS ?= 2
export CARGO_BUILD_JOBS

.PHONY: setup kube-sandbox demo test lint bench

setup:
	scripts/setup

demo: setup
	scripts/demo

# The Kubernetes tests need a real cluster: etcd, kube-apiserver, controller-manager,
# scheduler, kwok, and a real node (containerd, kubelet, kube-proxy, CoreDNS) with images
# built here, all cached in ~/.cache/weir/kube-sandbox. The real node needs root.
kube-sandbox:
	scripts/kube-sandbox build >/dev/null

test: setup kube-sandbox
	cargo test --release --workspace --no-fail-fast

lint:
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings

bench: setup
	target/release/weir bench topology
