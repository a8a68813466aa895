#!/usr/bin/env bash
# Proof that the checkers have teeth: apply each classic Raft bug (a *.mutant file
# beside this script) to a temporary copy of the workspace, build the simulator in
# release mode (so detection comes from the simulator's checkers, not the core's
# debug assertions), sweep seeds, and report how many seeds it took to catch it.
#
# Usage: raft-sim/mutants/run.sh [SEEDS] [MUTANT...]    (SEEDS defaults to 500)
# Exit status: 0 if every mutant was caught within SEEDS seeds, 1 otherwise.
#
# A mutant may say `@@ expect` `survives`: the same bug with the one checker (or
# fault) that catches it switched off by its `@@ args`, to show that nothing else does.
# Such a mutant counts as expected when no seed catches it.
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

# Builds the workspace copy in $1 (binary left in $target).
build() {
    local work="$1"
    if ! (cd "$work" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p raft-sim 2>"$work/build.log"); then
        echo "the workspace copy does not build:" >&2
        cat "$work/build.log" >&2
        exit 1
    fi
    cp "$target/release/raft-sim" "$work/raft-sim-bin"
}

# Sweeps with the binary of workspace copy $1 and sweep arguments $2; output to $3.
sweep() {
    local work="$1" args="$2" out="$3"
    # shellcheck disable=SC2086 # the arguments are words by design
    "$work/raft-sim-bin" --seeds "1..=$seeds" --jobs "$jobs" $args >"$out" 2>/dev/null || true
}

# The failing-seed lines of a sweep: "SEED  kind: violation".
failing_lines() {
    awk '/^ +[0-9]+  / { sub(/^ +/, ""); print }' "$1"
}

copy_workspace() {
    local work
    work="$(mktemp -d)"
    (cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$work")
    echo "$work"
}

# The unmutated core first: seeds that fail without any mutant (known core bugs) do
# not count as detections. A mutant may name sweep arguments (`@@ args`) that pin the
# world its bug needs; the baseline is swept with the same arguments.
baseline="$(copy_workspace)"
trap 'rm -rf "$baseline"' EXIT
build "$baseline"
baseline_failures() {
    local args="$1" key
    key="$(printf '%s' "$args" | cksum | cut -d' ' -f1)"
    if [ ! -f "$baseline/failing-$key" ]; then
        sweep "$baseline" "$args" "$baseline/sweep-$key.txt"
        failing_lines "$baseline/sweep-$key.txt" | awk '{ print $1 }' >"$baseline/failing-$key"
    fi
    echo "$baseline/failing-$key"
}

printf '%-34s %-9s %-9s %s\n' "mutant" "detected" "failing" "first detection (seed  violation)"
all_caught=0
for mutant in "${mutants[@]}"; do
    name="$(basename "$mutant" .mutant)"
    args="$(section "$mutant" args | tr '\n' ' ')"
    expect="$(section "$mutant" expect | tr -d ' \n')"
    known="$(baseline_failures "$args")"
    work="$(copy_workspace)"
    file="$(section "$mutant" file)"
    substitute "$work/$file" "$(section "$mutant" old)" "$(section "$mutant" new)"
    build "$work"
    sweep "$work" "$args" "$work/sweep.txt"
    failing_lines "$work/sweep.txt" \
        | awk 'FILENAME == ARGV[1] { known[$1] = 1; next } !($1 in known)' "$known" - \
        >"$work/new-failures"
    count="$(wc -l <"$work/new-failures")"
    first="$(awk 'NR == 1 { print substr($0, 1, 110) }' "$work/new-failures")"
    first_safety="$(awk '/  safety: / { print substr($0, 1, 110); exit }' "$work/new-failures")"
    if [ "$count" -gt 0 ]; then
        printf '%-34s %-9s %-9s %s\n' "$name" "seed ${first%% *}" "$count/$seeds" "$first"
        if [ -n "$first_safety" ] && [ "$first_safety" != "$first" ]; then
            printf '%-34s %-9s %-9s %s\n' "" "safety:" "" "$first_safety"
        fi
        if [ "$expect" = "survives" ]; then
            printf '%-34s %-9s %-9s %s\n' "" "UNEXPECTED" "" "(expected to survive: something else catches it)"
            all_caught=1
        fi
    elif [ "$expect" = "survives" ]; then
        printf '%-34s %-9s %-9s %s\n' "$name" "survives" "0/$seeds" "(as expected: nothing else catches it)"
    else
        printf '%-34s %-9s %-9s %s\n' "$name" "NO" "0/$seeds" "(not caught in $seeds seeds)"
        all_caught=1
    fi
    if [ -n "$args" ]; then
        printf '%-34s %-9s %-9s %s\n' "" "pinned:" "" "$args"
    fi
    rm -rf "$work"
done
exit "$all_caught"
