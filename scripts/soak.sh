#!/usr/bin/env bash
# Soak: a server with both bundled models under a mix of every fault for DURATION seconds.
#
#   scripts/soak.sh DURATION [OUT]
#
# fastdiss-server runs configs/server.yaml (models g2p and de-en) with a small queue, and
# fastdiss-loadgen drives it in open loop: K uniform over 1..50, 15% streams, 10% calls the client
# cancels at a random point, 10% deadlines too short to meet, 5% bad requests of every kind, and
# every BURST_EVERY seconds a burst of BURST_SIZE calls past the queue limit. Afterwards a sample
# of VERIFY answers is asked again, one at a time, and must give the same tokens. Meanwhile the
# server's RSS and malloc heap are read every RSS_EVERY seconds. It fails (exit 1) if any call got no answer, ended
# with a code its kind does not allow, was answered differently alone; if the server's request
# counters disagree with the client's; or if RSS grew over the second half beyond noise.
# Environment: BUILD (build), RATE (calls/s, 12), BURST_EVERY (30 s), BURST_SIZE (300),
# QUEUE (engine.max_queued_requests, 48), VERIFY (40), RSS_EVERY (10 s), SERVER_SETS (more --set).
# OUT (default runs/soak-DURATION) gets the logs, the loadgen's JSON, the RSS samples and report.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:?usage: scripts/soak.sh DURATION [OUT]}
OUT=${2:-runs/soak-$DURATION}
BUILD=${BUILD:-build}
RATE=${RATE:-12}
BURST_EVERY=${BURST_EVERY:-30}
BURST_SIZE=${BURST_SIZE:-300}
QUEUE=${QUEUE:-48}
VERIFY=${VERIFY:-40}
RSS_EVERY=${RSS_EVERY:-10}
read -r -a server_sets <<<"${SERVER_SETS:-}"
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"
source scripts/server-process.sh

# Texts each model can answer: common, rare and made-up words; short German sentences.
printf '%s\n' hello world pneumonia rhythm quixotic strengths fastdiss blorpington colonel \
  yacht thought xylophone >"$OUT/g2p.txt"
printf '%s\n' "Ein Mann fährt Fahrrad." "Ich habe Hunger." "Wo ist der Bahnhof?" "Das Wetter ist schön." \
  "Wir gehen morgen ins Kino." "Kannst du mir helfen?" "Der Hund schläft." "Ich verstehe das nicht." >"$OUT/de-en.txt"

# Both models on one core each way: the soak is about correctness, not speed.
launch_server "$OUT/server.log" --config configs/server.yaml --port 0 --metrics-port 0 \
  --set server.host=127.0.0.1 --set "engine.max_queued_requests=$QUEUE" --set runtime.blas_threads=1 \
  "${server_sets[@]/#/--set=}"
echo "soak: server $SERVER_PID on gRPC $GRPC_PORT, metrics $METRICS_PORT; $DURATION s at $RATE calls/s"

scrape() { curl -sf "http://127.0.0.1:$METRICS_PORT/metrics"; }
scrape >"$OUT/metrics-before.txt"

# Every RSS_EVERY seconds until the loadgen is done: seconds since start, then the server's own
# process_resident_memory_bytes and fastdiss_heap_bytes (in use, free but kept) from /metrics.
rss_sampler() {
  local start=$SECONDS
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    scrape | awk -v t=$((SECONDS - start)) '
      /^process_resident_memory_bytes / {rss = $2}
      /^fastdiss_heap_bytes\{state="in_use"\}/ {used = $2}
      /^fastdiss_heap_bytes\{state="free"\}/ {free = $2}
      END {if (rss != "") printf "%d %.0f %.0f %.0f\n", t, rss, used, free}' || true
    sleep "$RSS_EVERY"
  done
}
rss_sampler >"$OUT/rss.txt" &
RSS_PID=$!

set +e
"$BUILD/server/fastdiss-loadgen" --target "127.0.0.1:$GRPC_PORT" \
  --model-input "g2p=$OUT/g2p.txt" --model-input "de-en=$OUT/de-en.txt" \
  --rate "$RATE" --duration "$DURATION" --warmup 0 --steps "$(seq -s, 1 50)" --deadline-seconds 60 \
  --stream-share 0.15 --cancel-share 0.10 --short-deadline-share 0.10 --bad-share 0.05 \
  --burst-every "$BURST_EVERY" --burst-size "$BURST_SIZE" --verify "$VERIFY" --json >"$OUT/loadgen.json"
loadgen_rc=$?
set -e
kill "$RSS_PID" 2>/dev/null || true
wait "$RSS_PID" 2>/dev/null || true
scrape >"$OUT/metrics-after.txt"
[[ $loadgen_rc -eq 0 ]] || { echo "soak: fastdiss-loadgen failed ($loadgen_rc)" >&2; exit 1; }

"$PYTHON" - "$OUT" "$DURATION" <<'EOF'
import json, re, sys

out, duration = sys.argv[1], float(sys.argv[2])
load = json.load(open(f"{out}/loadgen.json"))

def counters(path):
    """fastdiss_requests_total summed over models, by code."""
    by_code = {}
    for line in open(path):
        m = re.match(r'fastdiss_requests_total\{(.*)\} ([0-9.e+]+)$', line.strip())
        if m:
            code = re.search(r'code="([^"]*)"', m.group(1)).group(1)
            by_code[code] = by_code.get(code, 0) + float(m.group(2))
    return by_code

before, after = counters(f"{out}/metrics-before.txt"), counters(f"{out}/metrics-after.txt")
server = {c: int(after.get(c, 0) - before.get(c, 0)) for c in set(after) | set(before)}
server = {c: n for c, n in server.items() if n}
client = load["all_codes"]
lines, failures = [], []
say = lines.append

say(f"soak: {duration:.0f} s, {load['calls_started']} calls, rate {load['rate']} calls/s")
say("calls by kind and final code (client):")
for kind, k in sorted(load["kinds"].items()):
    codes = ", ".join(f"{c} {n}" for c, n in sorted(k["codes"].items()))
    extra = f"   UNEXPECTED {k['unexpected']}: {k['first_unexpected']}" if k["unexpected"] else ""
    say(f"  {kind:24s} {codes}{extra}")
say(f"calls with no answer: {load['unanswered']}")
say(f"calls ending with a code their kind does not allow: {load['unexpected']}")
v = load["verify"]
say(f"answers asked again alone: {v['checked']}, with other tokens: {v['mismatched']}, failed: {v['failed']}")
if v["first_mismatch"]:
    say(f"  first mismatch: {v['first_mismatch']}")
if load["unanswered"]: failures.append("calls got no answer")
if load["unexpected"]: failures.append("calls ended with a code their kind does not allow")
if v["mismatched"] or v["failed"]: failures.append("answers differed (or failed) when asked again alone")
if v["checked"] == 0: failures.append("no answer was asked again")

# The server counts every call it saw, once. Calls whose code depends on a race between the client
# and the server (a cancel, a deadline of a few ms) may end at the client before the server sees
# them or answers them: there only the totals bound each other. Every other code must agree exactly.
say("server counters (fastdiss_requests_total) against the client, by code:")
racy = {"CANCELLED", "DEADLINE_EXCEEDED", "OK"}
racy_calls = sum(sum(load["kinds"].get(k, {"codes": {}})["codes"].values()) for k in ("cancel", "short deadline"))
for code in sorted(set(server) | set(client)):
    s, c = server.get(code, 0), client.get(code, 0)
    say(f"  {code:20s} server {s:7d}  client {c:7d}")
    if code not in racy and s != c:
        failures.append(f"{code}: server counted {s}, client {c}")
s_total, c_total = sum(server.values()), sum(client.values())
s_racy = sum(server.get(c, 0) for c in racy)
c_racy = sum(client.get(c, 0) for c in racy)
say(f"  total                server {s_total:7d}  client {c_total:7d}  (racy codes: server {s_racy}, client {c_racy}, racy calls {racy_calls})")
if s_total > c_total: failures.append("the server counted more calls than the client made")
if c_racy - s_racy > racy_calls or s_racy > c_racy:
    failures.append("OK/CANCELLED/DEADLINE_EXCEEDED totals differ by more than the racy calls allow")
if server.get("OK", 0) < client.get("OK", 0):
    failures.append("the server counted fewer OK answers than the client received")

# Memory: least-squares slope over the second half, against the scatter around that line.
samples = [tuple(map(float, l.split())) for l in open(f"{out}/rss.txt") if len(l.split()) == 4]
mib = 1 << 20
say("server RSS (MiB) every sample: " + " ".join(f"{r / mib:.0f}" for _, r, _, _ in samples))
say("malloc heap in use (MiB):      " + " ".join(f"{u / mib:.0f}" for _, _, u, _ in samples))

def trend(points):
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    stt = sum((t - mt) ** 2 for t, _ in points)
    slope = sum((t - mt) * (v - mv) for t, v in points) / stt
    scatter = (sum((v - (mv + slope * (t - mt))) ** 2 for t, v in points) / max(1, n - 2)) ** 0.5
    return mv, slope, scatter, points[-1][0] - points[0][0]

# Peaks: the highest RSS of each minute (bursts raise it until the next trim), shown, not judged.
peaks = {}
for t, r, _, _ in samples:
    peaks[int(t // 60)] = max(peaks.get(int(t // 60), 0), r / mib)
say("server RSS peak of each minute (MiB): " + " ".join(f"{p:.0f}" for _, p in sorted(peaks.items())))
half = [s for s in samples if s[0] >= duration / 2]
if len(half) >= 3:
    for name, index, judged in (("RSS", 1, True), ("heap in use", 2, False), ("heap free but kept", 3, False)):
        mean, slope, scatter, span = trend([(s[0], s[index] / mib) for s in half])
        growth = slope * span
        # Flat: the growth the slope predicts over the half is within 3 scatters, or 2% of the mean.
        bound = max(3 * scatter, 0.02 * mean)
        say(f"{name} over the second half: mean {mean:.1f} MiB, slope {slope * 60:.2f} MiB/min, "
            f"growth {growth:.1f} MiB over {span:.0f} s, scatter {scatter:.2f} MiB, bound {bound:.1f} MiB")
        if judged and growth > bound:
            failures.append(f"{name} grew {growth:.1f} MiB over the second half (bound {bound:.1f})")
else:
    say(f"memory: {len(half)} samples in the second half, too few for a slope (RSS_EVERY smaller)")
    failures.append("too few memory samples")
say("result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
open(f"{out}/report.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(1 if failures else 0)
EOF
