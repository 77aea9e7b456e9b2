#!/usr/bin/env bash
# Request throughput of this checkout against another one (a commit's worktree), in one session on one machine:
#   bench/compare-requests.sh <other-checkout> [runs] [harness options]
# Builds both in Release, then runs the request harness of each in turn, <runs> times (default 3), and prints the
# median rate and CPU time per request of each, and their ratios (this checkout against the other). Absolute rates on a shared machine are noise;
# the ratio, measured under the same conditions, is the figure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
other="$(cd "$1" && pwd)"
runs="${2:-3}"
shift $(( $# >= 2 ? 2 : 1 ))
for tree in "$here" "$other"; do
  dotnet build -c Release "$tree/bench/Iris.Benchmarks" -v q -nologo >/dev/null
  dotnet build -c Release "$tree/src/Iris.Silo" -v q -nologo >/dev/null
done
declare -a mine theirs minecpu theircpu
for ((i = 0; i < runs; i++)); do
  for tree in "$here" "$other"; do
    line=$(cd "$tree" && dotnet "$tree/bench/Iris.Benchmarks/bin/Release/net10.0/Iris.Benchmarks.dll" requests "$@" | grep '^requests')
    echo "$([ "$tree" = "$here" ] && echo this || echo other): $line"
    rate=$(sed -E 's/.*rate=([0-9]+).*/\1/' <<<"$line")
    cpu=$(sed -E 's/.*cpu=([0-9.]+)us.*/\1/' <<<"$line")
    if [ "$tree" = "$here" ]; then mine+=("$rate"); minecpu+=("$cpu"); else theirs+=("$rate"); theircpu+=("$cpu"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m=$(median "${mine[@]}"); t=$(median "${theirs[@]}")
echo "median requests/s: this $m, other $t, ratio $(awk -v a="$m" -v b="$t" 'BEGIN {printf "%.2f", a/b}')"
mc=$(median "${minecpu[@]}"); tc=$(median "${theircpu[@]}")
echo "median CPU per request: this ${mc} us, other ${tc} us, ratio (other over this: above 1 means this is cheaper) $(awk -v a="$mc" -v b="$tc" 'BEGIN {printf "%.2f", b/a}')"
