#!/usr/bin/env bash
# The performance benchmark: exports a ResNet-18-shaped PyTorch state_dict
# (11.7M values) and a 60M-value one (a 200 MB embedding) with each
# compression, records wall time (the fastest of $BENCH_ROUNDS rounds,
# default 5) and peak RSS (/usr/bin/time -v), measures the machine's limits
# on the same data (bench/limits), runs the Python recipe users run today
# where Debian's python3-torch is installed, and prints a table (also saved
# to bench/results/latest.md).
#   bench/run.sh [DATA_DIR]     checkpoints are generated once into DATA_DIR (default bench/data)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}
DATA=${1:-bench/data}
RES=bench/results
OUT=${BENCH_OUT:-$DATA/out}
mkdir -p "$DATA" "$RES" bin
go build -o bin/ckpt2csv ./cmd/ckpt2csv
go build -o bin/limits ./bench/limits
PY=/usr/bin/python3
have_torch() { [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; }
if [ ! -f "$DATA/resnet18.pt" ] || [ ! -f "$DATA/big60m.pt" ]; then
  have_torch || { echo "bench: no $DATA/*.pt and no $PY with torch to make them" >&2; exit 1; }
  "$PY" bench/make_checkpoints.py "$DATA"
fi

# timed CMD...: sets WALL (seconds) and RSS (MB) from /usr/bin/time -v
timed() {
  /usr/bin/time -v "$@" >/dev/null 2>"$RES/time.txt" || { cat "$RES/time.txt" >&2; return 1; }
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$RES/time.txt")
  RSS=$(awk '/Maximum resident set size/ {printf "%.0f", $NF/1024}' "$RES/time.txt")
}
# Each export's time is the fastest of ROUNDS runs and its RSS the largest;
# each limit is the fastest of ROUNDS passes. The exports take turns, round
# after round: this VM's speed drifts from minute to minute (the same export
# measured 2.2 s and then 3.5 s for a minute, its CPU time 60% higher), and
# taking turns spreads each export's runs across that drift. Each run's
# output is deleted at once: deleted before it is written back, it costs no
# disk time, while writeback in progress slows writes into the page cache up
# to 10x on this machine.
ROUNDS=${BENCH_ROUNDS:-5}
values() { # total values of a checkpoint, from inspect
  bin/ckpt2csv inspect --json "$1" | awk -F': ' '/"values"/ {gsub(/[ ,]/,"",$2); print $2; exit}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
mps() { awk -v v="$1" -v s="$2" 'BEGIN {printf "%.2f", v/s/1e6}'; }

table=$RES/latest.md
{
  echo "ckpt2csv benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(go version | awk '{print $3}'), load $(cut -d' ' -f1 /proc/loadavg)"
  echo
  echo "| checkpoint | values | mode | seconds (best of $ROUNDS) | M values/s | CSV MB/s | peak RSS MB | tightest limit (M values/s) | ratio to limit |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$table"

declare -A wall=() rss=()
for _ in $(seq "$ROUNDS"); do
  for ck in resnet18 big60m; do
    for mode in none gzip zstd; do
      timed bin/ckpt2csv convert "$DATA/$ck.pt" --out "$OUT/$mode" --compression "$mode" --log-level warn
      rm -rf "$OUT/$mode"
      k=$ck/$mode
      wall[$k]=$(awk -v a="${wall[$k]:-}" -v b="$WALL" 'BEGIN {print (a == "" || b < a) ? b : a}')
      rss[$k]=$(( RSS > ${rss[$k]:-0} ? RSS : ${rss[$k]:-0} ))
    done
  done
done

for ck in resnet18 big60m; do
  src=$DATA/$ck.pt
  n=$(values "$src")
  # the limits are measured on the CSV text of an untimed export
  bin/ckpt2csv convert "$src" --out "$OUT/plain" --compression none --log-level warn
  id=$(find "$OUT/plain" -path "*$ck.pt/metadata.json" | head -1 | xargs dirname)
  csvbytes=$(awk -F': ' '/"bytes"/ {gsub(/[ ,]/,"",$2); print $2; exit}' "$id/metadata.json")
  lim=$(bin/limits -ckpt "$src" -out "$DATA" -passes "$ROUNDS" -remove "$id"/part-*.csv)
  get() { echo "$lim" | tr ',{}' '\n\n\n' | awk -F: -v k="\"$1\"" '$1==k {print $2}'; }
  f=$(get format_values_per_s) g=$(get gzip_values_per_s) z=$(get zstd_values_per_s) w=$(get write_values_per_s)
  h=$(get sha256_values_per_s) gr=$(get gzip_ratio) zr=$(get zstd_ratio)
  # An export formats, compresses, checksums and writes on the same cores, so
  # its limit adds their costs per value (sha256 and the write cover the
  # stored bytes; sha256 runs on one core per shard, which caps it as well).
  declare -A limit
  cpu_limit() { # compress_rate ratio
    awk -v c="$(nproc)" -v f="$f" -v k="$1" -v r="$2" -v h="$h" -v w="$w" 'BEGIN {
      cost = c/f + 1/(h*r) + 1/(w*r); if (k > 0) cost += c/k
      l = c/cost; if (h*r < l) l = h*r; print l }'
  }
  limit[none]=$(cpu_limit 0 1)
  limit[gzip]=$(cpu_limit "$g" "$gr")
  limit[zstd]=$(cpu_limit "$z" "$zr")
  for mode in none gzip zstd; do
    s=${wall[$ck/$mode]}
    rate=$(awk -v n="$n" -v s="$s" 'BEGIN {print n/s}')
    echo "| $ck | $n | $mode | $s | $(mps "$n" "$s") | $(mps "$csvbytes" "$s") | ${rss[$ck/$mode]} | $(mps "${limit[$mode]}" 1) | $(ratio "$rate" "${limit[$mode]}") |" >>"$table"
  done
  echo "| $ck | limits | format $(mps "$f" 1), gzip $(mps "$g" 1), zstd $(mps "$z" 1), sha256 $(mps "$h" 1) (1 core), write $(mps "$w" 1) M values/s | | | | | | |" >>"$table"
  if [ "$ck" = resnet18 ]; then resnet_n=$n; fi
  rm -rf "$OUT"
done

# four checkpoints in flight share one memory bound
manifest=$DATA/workers4.txt
for i in 0 1 2 3; do echo "big60m.pt w$i"; done >"$manifest"
timed bin/ckpt2csv run --manifest "$manifest" --out "$OUT/w4" --workers 4 --force --log-level warn
echo "| 4 x big60m, --workers 4 | $((4 * $(values "$DATA/big60m.pt"))) | gzip | $WALL | | | $RSS | | |" >>"$table"
rm -rf "$OUT"

# inspect of a multi-GB checkpoint reads only its header
big=$DATA/sparse-4g.safetensors
if [ ! -f "$big" ]; then
  hdr='{"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}'
  hdr=$(printf '%-*s' $(( (${#hdr} + 7) / 8 * 8 )) "$hdr")
  { printf "$(printf '\\x%02x' $(( ${#hdr} & 255 )) $(( (${#hdr} >> 8) & 255 )) 0 0 0 0 0 0)"; printf '%s' "$hdr"; } >"$big"
  truncate -s $(( 8 + ${#hdr} + 4294967296 )) "$big"
fi
read_bytes=$(bin/ckpt2csv inspect --json "$big" | awk -F': ' '/"bytes_read"/ {gsub(/[ ,]/,"",$2); print $2}')
echo >>"$table"
echo "inspect of a $(( $(stat -c %s "$big") >> 20 )) MiB checkpoint read $read_bytes bytes." >>"$table"

if have_torch; then
  timed "$PY" bench/python_recipe.py "$DATA/resnet18.pt" "$DATA/python.csv"
  rm -f "$DATA/python.csv"
  {
    echo "Python recipe (torch.load + csv.writer) on resnet18: $WALL s, $(mps "$resnet_n" "$WALL") M values/s, peak RSS $RSS MB."
    echo "Speed-up of ckpt2csv: gzip $(ratio "$WALL" "${wall[resnet18/gzip]}")x, none $(ratio "$WALL" "${wall[resnet18/none]}")x."
  } >>"$table"
fi
echo "Peak RSS exporting big60m (gzip): ${rss[big60m/gzip]} MB." >>"$table"
cat "$table"
