#!/usr/bin/env bash
# The monitoring deliverables against a real Prometheus 2.42 from Debian:
# - deploy/prometheus/demail-gateway.rules.yml passes `promtool check rules` and its unit tests;
# - a Prometheus of its own (temp storage, 127.0.0.1, free port, 1 s scrape and evaluation)
#   scrapes a running gateway and, with the rules' `for:` set to 0s, fires DemailCardAbsent when
#   the simulated card is pulled and clears it when the card is back;
# - deploy/grafana/demail-gateway.json (Grafana is not in Debian) is valid JSON, every PromQL
#   expression in it is accepted by that Prometheus and returns data, and it names only metrics
#   the gateway exports.
set -euo pipefail
SRC="${DEMAIL_SOURCE_DIR:?}"
RULES="$SRC/deploy/prometheus/demail-gateway.rules.yml"
DASHBOARD="$SRC/deploy/grafana/demail-gateway.json"
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
  { echo "FAIL: prometheus/promtool missing (deploy/install-deps.sh installs them)" >&2; exit 1; }
. "$(dirname "$0")/stack.sh"
PROM_PID=
cleanup() {
  if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
  stack_stop
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- gatewayd.log" >&2; tail -20 "$STACK/gatewayd.log" >&2 || true
  echo "--- prometheus.log" >&2; tail -20 "$STACK/prometheus.log" >&2 || true
  exit 1
}
started=$(date +%s)

# 1. The rules file as shipped.
promtool check rules "$RULES" >"$STACK/promtool.txt" 2>&1 || fail "promtool check rules: $(cat "$STACK/promtool.txt")"
promtool test rules "$SRC/tests/deploy/prometheus/rules_test.yml" >"$STACK/promtool-test.txt" 2>&1 ||
  fail "promtool test rules: $(cat "$STACK/promtool-test.txt")"
pass "promtool check rules and promtool test rules: $(grep -o '[0-9]* rules found' "$STACK/promtool.txt")"

# 2. The gateway, and a Prometheus that scrapes it with the test copy of the rules.
stack_start
mkdir -p "$STACK/prom/data"
# Wait no minutes in a test: every `for:` becomes 0s (evaluated each second).
sed -E 's/^([[:space:]]*for:).*/\1 0s/' "$RULES" >"$STACK/prom/rules.yml"
grep -q 'for: 0s' "$STACK/prom/rules.yml" || fail "the rules have no for: to shorten"
PROM_PORT=$(free_port)
cat >"$STACK/prom/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $STACK/prom/rules.yml
scrape_configs:
  - job_name: demail-gateway
    static_configs:
      - targets: ['127.0.0.1:$HEALTH_PORT']
YML
promtool check config "$STACK/prom/prometheus.yml" >/dev/null || fail "test prometheus.yml"
prometheus --config.file="$STACK/prom/prometheus.yml" --storage.tsdb.path="$STACK/prom/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.retention.time=1h \
  >"$STACK/prometheus.log" 2>&1 &
PROM_PID=$!
PROM="http://127.0.0.1:$PROM_PORT"

# query EXPR -> the API's JSON; value EXPR -> the first sample's value (empty if none).
query() { curl -sf --max-time 10 "$PROM/api/v1/query" --data-urlencode "query=$1"; }
value() {
  query "$1" | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
value_is() { [ "$(value "$1" 2>/dev/null)" = "$2" ]; }
# alert_state NAME -> firing, pending or nothing
alert_state() {
  curl -sf --max-time 10 "$PROM/api/v1/alerts" | /usr/bin/python3 -c '
import json, sys
alerts = [a for a in json.load(sys.stdin)["data"]["alerts"] if a["labels"]["alertname"] == sys.argv[1]]
print(alerts[0]["state"] if alerts else "")' "$1"
}
alert_is() { [ "$(alert_state "$1" 2>/dev/null)" = "$2" ]; }
# no_alert NAME: Prometheus answers and has no such alert (pending or firing).
no_alert() {
  local a
  a=$(curl -sf --max-time 10 "$PROM/api/v1/alerts") && grep -q '"status":"success"' <<<"$a" || return 1
  ! grep -q "\"alertname\":\"$1\"" <<<"$a"
}
rules_evaluated() {
  curl -sf --max-time 10 "$PROM/api/v1/rules" | /usr/bin/python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
sys.exit(0 if len(rules) == 14 and all(r["health"] == "ok" for r in rules) else 1)'
}

wait_for 60 curl -sf --max-time 5 "$PROM/-/ready" -o /dev/null || fail "prometheus did not become ready"
wait_for 30 value_is 'up{job="demail-gateway"}' 1 || fail "prometheus does not scrape the gateway"
wait_for 30 value_is 'demail_component_ready{component="card"}' 1 || fail "card not ready before the test"
wait_for 30 rules_evaluated || fail "the rules are not evaluated without errors: $(curl -s "$PROM/api/v1/rules")"
no_alert DemailCardAbsent || fail "DemailCardAbsent with the card in"
[ "$(value demail_card_absent)" = 0 ] || fail "demail_card_absent with the card in"
expiry=$(value demail_certificate_expiry_seconds)
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$expiry') > 0 else 1)" ||
  fail "certificate expiry not exported or not positive: '$expiry'"
pass "prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}') scrapes the gateway; all 14 rules evaluate; card in, no alert; certificate valid for ${expiry} s"

# 3. The card-absent alert: fires when the card is pulled, clears when it is back.
"$FIXTURE" card-pull "$STACK/pcsc"
t0=$(date +%s)
wait_for 30 alert_is DemailCardAbsent firing ||
  fail "DemailCardAbsent did not fire: $(curl -s "$PROM/api/v1/alerts"); readyz: $(curl -s "http://127.0.0.1:$HEALTH_PORT/readyz")"
labels=$(curl -s "$PROM/api/v1/alerts")
grep -q '"severity":"critical"' <<<"$labels" || fail "alert without its severity: $labels"
grep -q '"runbook":"operations.md#demailcardabsent"' <<<"$labels" || fail "alert without its runbook: $labels"
value_is 'demail_component_ready{component="card"}' 0 || fail "card component still ready in Prometheus"
! no_alert DemailCardAbsent || fail "no_alert does not see the firing alert (the clear check below would be void)"
no_alert DemailCardPinRejected || fail "a pulled card is not a rejected PIN"
pass "card pulled: DemailCardAbsent firing after $(( $(date +%s) - t0 )) s (severity, runbook set)"
"$FIXTURE" card-insert "$STACK/pcsc"
t0=$(date +%s)
wait_for 45 no_alert DemailCardAbsent ||
  fail "DemailCardAbsent did not clear: $(curl -s "$PROM/api/v1/alerts")"
wait_for 30 value_is 'demail_component_ready{component="card"}' 1 || fail "card not ready again in Prometheus"
pass "card back: DemailCardAbsent cleared after $(( $(date +%s) - t0 )) s, card ready again"

# 4. The dashboard. Every target expression, with Grafana's variables filled in, must be accepted
#    by Prometheus and return data from this gateway, and name only exported metrics.
curl -sf "http://127.0.0.1:$HEALTH_PORT/metrics" | awk '$1 == "#" && $2 == "TYPE" {print $3}' | sort -u >"$STACK/exported.txt"
wait_for 30 value_is 'count(demail_inbound_deferred)' 1 || fail "no inbound pass seen in Prometheus"
# rate() needs two samples in its window: wait until a counter has them.
wait_for 30 bash -c "[ -n \"\$(curl -sf '$PROM/api/v1/query' --data-urlencode 'query=rate(demail_messages_accepted_total[1m])' | grep -o '\"value\"')\" ]" ||
  fail "no rate() over the scraped counters yet"
/usr/bin/python3 - "$DASHBOARD" "$PROM" "$STACK/exported.txt" "127.0.0.1:$HEALTH_PORT" <<'PY' || fail "dashboard check"
import json, re, sys, urllib.parse, urllib.request
path, prom, exported_file, instance = sys.argv[1:]
dash = json.load(open(path))
exported = set(open(exported_file).read().split())
exprs = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
        walk(p.get("panels", []))
walk(dash["panels"])
for v in dash["templating"]["list"]:
    if v["type"] == "query":  # label_values(METRIC, label) is Grafana's, not PromQL
        m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", v["query"]["query"])
        assert m, "template query " + v["query"]["query"]
        exprs.append(("variable " + v["name"], m.group(1)))
assert len(exprs) >= 15, f"only {len(exprs)} expressions"
bad = []
for title, expr in exprs:
    q = (expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
             .replace("$instance", instance))  # one gateway: no regex escaping needed
    assert "$" not in q, f"{title}: unknown variable in {expr}"
    for name in re.findall(r"\b(demail_\w+|up)\b(?!\s*\()", q):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in exported and base not in exported and name != "up":
            bad.append(f"{title}: {name} is not exported by the gateway")
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        r = json.load(urllib.request.urlopen(url, timeout=10))
    except urllib.error.HTTPError as e:
        r = json.load(e)
    if r.get("status") != "success":
        bad.append(f"{title}: {expr}: {r.get('error')}")
    elif not r["data"]["result"]:
        bad.append(f"{title}: {expr}: no data from the running gateway")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
panels = [p for p in dash["panels"] if p["type"] != "row"]
print(f"dashboard: {len(panels)} panels, {len(exprs)} expressions parsed and answered")
PY
pass "Grafana dashboard: valid JSON, every expression accepted by Prometheus with data, only exported metrics"
echo "total $(( $(date +%s) - started )) s"
