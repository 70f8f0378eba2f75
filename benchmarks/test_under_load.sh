#!/usr/bin/env bash
# The default tests beside CPU-bound work, as on the busy machine CI may get: proof that no
# test depends on the machine's speed. Starts BURNERS (default 2) processes that spin a CPU
# each, runs `make test` (extra pytest arguments pass through), samples the load average
# every 5 s, then stops the burners and prints the load the tests ran under.
#
#   benchmarks/test_under_load.sh            # or: make test-under-load
#   BURNERS=4 benchmarks/test_under_load.sh -x
set -euo pipefail
cd "$(dirname "$0")/.."

burners=()
samples=$(mktemp)
stop() {
    kill "${burners[@]}" "${sampler:-}" 2>/dev/null || true
    rm -f "$samples"
}
trap stop EXIT

for _ in $(seq "${BURNERS:-2}"); do
    python3 -c 'while True: pass' &
    burners+=($!)
done
(while true; do cut -d' ' -f1 /proc/loadavg >>"$samples"; sleep 5; done) &
sampler=$!

echo "running make test beside ${#burners[@]} CPU-bound processes on $(nproc) CPU(s)"
started=$(date +%s)
status=0
make test ARGS="$*" || status=$?
echo "make test exited $status after $(($(date +%s) - started)) s; 1-minute load average" \
    "over the run: $(sort -g "$samples" | awk '{v[NR]=$1} END {printf "min %.2f, median %.2f, max %.2f (%d samples)", v[1], v[int((NR+1)/2)], v[NR], NR}')"
exit "$status"
