#!/usr/bin/env bash
# Instructions per governed request, counted by valgrind's callgrind: the
# same count for the same binary and inputs however busy the machine is,
# so a before/after comparison holds on a shared machine where timings do
# not (docs/performance.md, "Counting instructions").
#
#   bench/callgrind.sh [HEIMDALL_BINARY] [SECONDS]
#
# Starts the mock and the gateway under callgrind on free loopback ports,
# sets up the governed scenario of the harness through the management API
# (a profile with two budgets and a rate limit, a user, its key), warms up,
# zeroes the counters, sends governed non-streaming requests for SECONDS
# (default 10) from 4 closed-loop workers, dumps, and prints
# `instructions/request`. The callgrind file stays in the work directory
# for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${1:-$target/release/heimdall}"
secs="${2:-10}"
bench="$target/release/heimdall-bench"
for tool in valgrind callgrind_control callgrind_annotate curl python3; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is needed" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "callgrind.sh: no gateway binary at $bin (cargo build --release -p heimdall)" >&2; exit 2; }
[ -x "$bench" ] || { echo "callgrind.sh: no $bench (cargo build --release -p heimdall-bench)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/heimdall-callgrind.XXXXXX")"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port="$(free_port)"; gw_port="$(free_port)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

RUST_LOG=warn "$bin" mock-provider --listen "127.0.0.1:$mock_port" --latency-ms 0 --tokens 16 --chunks 4 \
  >"$work/mock.log" 2>&1 &
pids+=($!)
token=callgrind-admin-token-0123456789
(cd "$work" && HEIMDALL_ADMIN_TOKEN=$token HEIMDALL_LISTEN="127.0.0.1:$gw_port" RUST_LOG=info \
  exec valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$bin" serve >"$work/gateway.log" 2>&1) &
gw=$!
pids+=($gw)
base="http://127.0.0.1:$gw_port"
echo "callgrind.sh: starting the gateway under callgrind (slow) in $work" >&2
for _ in $(seq 120); do curl -sf "$base/health" >/dev/null && break; sleep 1; done
curl -sf "$base/health" >/dev/null || { echo "callgrind.sh: the gateway did not start; see $work/gateway.log" >&2; exit 1; }

api() { curl -sf -X POST "$base$1" -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
api /api/providers "{\"provider\": \"openai\", \"network_config\": {\"base_url\": \"http://127.0.0.1:$mock_port\"}}" >/dev/null
api /api/governance/access-profiles '{"name": "Bench", "provider_configs": [{"provider_name": "openai", "allowed_models": ["gpt-4o-mini"]}],
  "budgets": [{"max_limit": 1000000, "reset_duration": "1d"}, {"max_limit": 1000000, "reset_duration": "1M"}],
  "rate_limit": {"request_max_limit": 100000000, "request_reset_duration": "1m", "token_max_limit": 1000000000000, "token_reset_duration": "1h"}}' >/dev/null
api /api/governance/access-profiles/1/roles '{"role_ids": [2], "is_default": true}' >/dev/null
vk="$(api /api/governance/users '{"name": "Bench", "email": "bench@example.com", "role_id": 2}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual_keys"][0]["value"])')"

url="$base/v1/chat/completions"
"$bench" load --url "$url" --concurrency 4 --duration 3s --bearer "$vk" >/dev/null
callgrind_control -z "$gw" >/dev/null 2>&1
"$bench" load --url "$url" --concurrency 4 --duration "${secs}s" --bearer "$vk" >"$work/load.json"
callgrind_control -d "$gw" >/dev/null 2>&1
dump="$(ls -t "$work"/callgrind.out.* | head -n1)"
ok="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok"])' "$work/load.json")"
total="$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')"
[ "$ok" -gt 0 ] || { echo "callgrind.sh: no request succeeded; see $work" >&2; exit 1; }
echo "binary=$bin requests=$ok instructions/request=$((total / ok)) profile=$dump"
