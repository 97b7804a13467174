#!/bin/bash
cd /work/wt-archive
B=target/release/examples/inbox_bench
URLS="memory sqlite:/tmp/archive-drain-bench.db postgres://postgres@127.0.0.1:5432/test?schema=alm_archive_drain_bench&migrate=true redis://127.0.0.1:6379/?prefix=alm-archive-drain-bench:"
for round in 1 2 3; do
  if [ $((round % 2)) = 1 ]; then order="0 30"; else order="30 0"; fi
  for days in $order; do
    echo "== round $round BENCH_ARCHIVE_DAYS=$days $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
    BENCH_ACKS=50 BENCH_DRAIN_EVENTS=${EVENTS:-20000} BENCH_ARCHIVE_DAYS=$days $B $URLS
    echo "   after: load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
