#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600), two at a time, at the lowest priority, each
# with its committed seeds; logs go to fuzz/logs/NAME.log. From the repository root:
#   bash fuzz/run_all.sh 600
set -u
cd "$(dirname "$0")/.."
secs=${1:-600}
mkdir -p fuzz/logs
run() {
    nice -n 19 cargo +nightly fuzz run -s none -a "$1" "fuzz/corpus/$1" "fuzz/seeds/$1" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 > "fuzz/logs/$1.log" 2>&1
    echo "$1 exit $?" >> fuzz/logs/summary.txt
}
for pair in "literal npy" "spec idx" "checkpoint png" "onnx"; do
    set -- $pair
    for t in "$@"; do
        mkdir -p "fuzz/corpus/$t"
        run "$t" &
    done
    wait
done
