#!/usr/bin/env bash
# The sweep matrix over the pinned extremes: the swarm's own draws, every cluster
# size, PreVote and CheckQuorum in all four combinations, membership changes on and
# off, frequent partitions and crashes, heavy loss, and the targeted faults forced
# on. Prints one line per world: seeds, passed, failing seeds by kind, wall time,
# and the sweep's cost line (the distributions behind the efficiency budgets).
#
# Usage: raft-sim/matrix.sh [SEEDS] [JOBS]   (defaults: 1000 seeds, 2 jobs)
# Builds the release binary first. Exit status: 0 if every world passed (and
# covered every fault class), 1 otherwise.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seeds="${1:-1000}"
jobs="${2:-2}"
(cd "$root" && cargo build --quiet --release -p raft-sim)
bin="$root/target/release/raft-sim"

worlds=(
    "defaults|"
    "1 voter|--nodes 1"
    "2 voters|--nodes 2"
    "3 voters|--nodes 3"
    "4 voters|--nodes 4"
    "5 voters|--nodes 5"
    "7 voters|--nodes 7"
    "PreVote off, CheckQuorum off|--pre-vote false --check-quorum false"
    "PreVote on, CheckQuorum off|--pre-vote true --check-quorum false"
    "PreVote off, CheckQuorum on|--pre-vote false --check-quorum true"
    "PreVote on, CheckQuorum on|--pre-vote true --check-quorum true"
    "membership changes on|--membership-changes true"
    "membership changes off|--membership-changes false"
    "partitions every ~100ms|--partition-every-ms 100"
    "crashes every ~100ms|--crash-every-ms 100"
    "both every ~100ms|--partition-every-ms 100 --crash-every-ms 100"
    "20% loss|--loss 20"
    "targeted faults on|--late-messages true --partial-connectivity true --unsynced-leader-crashes true --two-voter-changes true --membership-changes true"
    "lease reads on|--read-lease true"
    "lease reads off|--read-lease false"
    "lease reads, local readers, frequent faults|--read-lease true --local-readers true --partition-every-ms 100 --crash-every-ms 100"
    "local readers off|--local-readers false"
)

status=0
printf '%-32s %-7s %-7s %-32s %-8s %s\n' "world" "seeds" "passed" "failing (kind: seeds)" "wall" "pins"
for world in "${worlds[@]}"; do
    name="${world%%|*}"
    pins="${world#*|}"
    out="$(mktemp)"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # the pins are words by design
    "$bin" --seeds "1..=$seeds" --jobs "$jobs" $pins >"$out" 2>/dev/null || status=1
    wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }')
    passed=$(awk '/^passed / { print $2 }' "$out")
    failing=$(awk '/^ +[0-9]+  / { kind = $2; sub(/:$/, "", kind); seeds[kind] = seeds[kind] " " $1 }
        END { for (k in seeds) printf "%s:%s; ", k, seeds[k] }' "$out")
    gaps=$(awk -F': ' '/^FAULT CLASSES NEVER EXERCISED/ { print "gaps: " $2 }' "$out")
    printf '%-32s %-7s %-7s %-32s %-8s %s\n' "$name" "$seeds" "$passed" "${failing:--} $gaps" "$wall" "${pins:-(none)}"
    grep '^cost:' "$out" | sed 's/^/    /'
    rm -f "$out"
done
exit "$status"
