#!/usr/bin/env bash
# Proof that the checkers have teeth: apply each classic Raft bug (a *.mutant file
# beside this script) to a temporary copy of the workspace, build the simulator in
# release mode (so detection comes from the simulator's checkers, not the core's
# debug assertions), sweep seeds, and report how many seeds it took to catch it.
#
# Usage: raft-sim/mutants/run.sh [SEEDS] [MUTANT...]    (SEEDS defaults to 500)
# Exit status: 0 if every mutant was caught within SEEDS seeds, 1 otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seeds="${1:-500}"
shift || true
jobs="${JOBS:-2}"
target="${MUTANTS_TARGET_DIR:-${TMPDIR:-/tmp}/raft-mutants-target}"
mutants=("$@")
if [ ${#mutants[@]} -eq 0 ]; then
    mutants=("$here"/*.mutant)
fi

# Extracts the section NAME (file/old/new) of a mutant file.
section() {
    local mutant="$1" name="$2"
    awk -v want="$name" '
        /^@@ / { split($0, f, " "); current = f[2]; if (current == "file" && want == "file") print f[3]; next }
        current == want { print }
    ' "$mutant"
}

# Replaces the one exact occurrence of OLD by NEW in FILE; fails loudly otherwise.
substitute() {
    local file="$1" old="$2" new="$3" content rest count
    content="$(cat "$file"; printf x)"
    content="${content%x}"
    rest="${content//"$old"/}"
    count=$(( (${#content} - ${#rest}) / ${#old} ))
    if [ "$count" -ne 1 ]; then
        echo "mutant target text found $count times in $file (expected exactly once): the core changed; update the mutant" >&2
        return 1
    fi
    printf '%s' "${content/"$old"/"$new"}" > "$file"
}

printf '%-38s %-10s %-8s %s\n' "mutant" "detected" "failing" "first detection (seed: violation)"
all_caught=0
for mutant in "${mutants[@]}"; do
    name="$(basename "$mutant" .mutant)"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$work")
    file="$(section "$mutant" file)"
    substitute "$work/$file" "$(section "$mutant" old)" "$(section "$mutant" new)"
    if ! (cd "$work" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p raft-sim 2>"$work/build.log"); then
        echo "$name: the mutant does not build:" >&2
        cat "$work/build.log" >&2
        exit 1
    fi
    set +e
    "$target/release/raft-sim" --seeds "1..=$seeds" --jobs "$jobs" >"$work/sweep.txt" 2>/dev/null
    status=$?
    set -e
    first="$(awk '/^ +[0-9]+  / { sub(/^ +/, ""); print substr($0, 1, 110); exit }' "$work/sweep.txt")"
    failing="$(grep -cE '^ +[0-9]+  ' "$work/sweep.txt" || true)"
    if [ "$status" -eq 3 ] || [ "$status" -eq 4 ]; then
        seed="${first%% *}"
        printf '%-38s %-10s %-8s %s\n' "$name" "seed $seed" "$failing" "$first"
    else
        printf '%-38s %-10s %-8s %s\n' "$name" "NO" "0" "(exit $status: not caught in $seeds seeds)"
        all_caught=1
    fi
    rm -rf "$work"
    trap - EXIT
done
exit "$all_caught"
