# Shell helpers shared by the bench scripts (sourced, not run).
now() { date +%s.%N; }
# timed CMD...: runs CMD quietly, prints elapsed seconds; fails loudly when CMD fails
timed() {
  local t0 t1 out
  t0=$(now)
  if ! out=$("$@" 2>&1); then echo "command failed: $*" >&2; echo "$out" | tail -20 >&2; return 1; fi
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
}
# median of the numbers on stdin, one a line ("-" when there are none)
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "-"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}}'; }
