# Shell helpers shared by the bench scripts (sourced, not run).
now() { date +%s.%N; }
# timed CMD...: runs CMD quietly, prints elapsed seconds; fails loudly when CMD fails
timed() {
  local t0 t1 out
  # Start every measurement from a quiet disk: without this, the tool before pays for flushing
  # what the previous one wrote (a 150 MB context or image goes on being written for seconds).
  sync
  t0=$(now)
  if ! out=$("$@" 2>&1); then echo "command failed: $*" >&2; echo "$out" | tail -20 >&2; return 1; fi
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
}
# median of the numbers on stdin, one a line ("-" when there are none)
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "-"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}}'; }

# ---- data sets (the same bytes wherever a script uses them) ----
# make_files20k DIR: 20,000 files in 100 directories, ~150 MB, half random and half text
make_files20k() {
  node -e '
    const fs = require("fs"), crypto = require("crypto"), root = process.argv[1];
    for (let d = 0; d < 100; d++) {
      fs.mkdirSync(`${root}/d${d}`, { recursive: true });
      for (let f = 0; f < 200; f++) {
        const size = 2000 + ((d * 200 + f) * 7919) % 11000;
        const body = f % 2 ? crypto.randomBytes(size) : Buffer.alloc(size, `line ${d}/${f}\n`);
        fs.writeFileSync(`${root}/d${d}/f${f}.dat`, body);
      }
    }' "$1"
}
# make_big_tree DIR MB: MB megabytes in 10 MB files, half compressible log text, half random
make_big_tree() {
  local dir=$1 n i
  mkdir -p "$dir/text" "$dir/random"
  n=$(( $2 / 2 / 10 ))
  for i in $(seq 1 "$n"); do
    seq -f "line %.0f of a log file with some repeated words in it" $(( i * 1000000 )) $(( i * 1000000 + 700000 )) | head -c 10000000 > "$dir/text/f$i" || true
    head -c 10000000 /dev/urandom > "$dir/random/f$i"
  done
}
# make_small_tree DIR N: N files of 0.5-4 KB (base64 of random bytes), 500 per directory
make_small_tree() {
  node -e '
    const fs = require("fs"), path = require("path"), crypto = require("crypto");
    const [dir, n] = [process.argv[1], Number(process.argv[2])];
    for (let i = 0; i < n; i++) {
      const d = path.join(dir, "d" + Math.floor(i / 500));
      if (i % 500 === 0) fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, "f" + i), crypto.randomBytes(512 + (i * 37) % 3584).toString("base64"));
    }' "$1" "$2"
}
