#!/usr/bin/env bash
# Heimdall's benchmark in one command (docs/performance.md):
#   bench/run.sh                      # defaults: 1,000 and 5,000 req/s, 10 s cells
#   bench/run.sh --duration 3s --warmup 1s --saturation-duration 3s
#   bench/run.sh --scale-keys 100000,1000000
# Builds heimdall and heimdall-bench in release, then runs the harness, which
# starts (and always stops) the mock, the floor proxy and the gateways, and
# writes bench/results/<date>-<commit>.{json,md}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# two builds, not one: building the packages together unifies features
# differently and would recompile the shared dependencies a second time
cargo build --release -p heimdall
cargo build --release -p heimdall-bench
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$target/release/heimdall-bench" run --no-build --heimdall "$target/release/heimdall" "$@"
