#!/usr/bin/env bash
# The demo: installs Launchbay, starts a server on the example templates and brings up a
# space of the `demo` template (a web front, an API and a key-value store, all plain
# Python processes). Ctrl-C deletes the space and stops the server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO"

ensure_venv ""
# The demo's services each run in a bubblewrap sandbox; without it they run as you.
command -v bwrap >/dev/null || apt_install bubblewrap 2>/dev/null ||
  log "bubblewrap could not be installed: the demo's services run unconfined, as you"
PORT="${LAUNCHBAY_DEMO_PORT:-8470}"
DATA="$REPO/.demo/data"
export BAY_SERVER="http://127.0.0.1:$PORT"
BAY="$VENV/bin/bay"

log "starting the server on $BAY_SERVER"
mkdir -p "$REPO/.demo"
# The server runs in a session of its own: Ctrl-C in a terminal signals the whole
# foreground process group, and the server must outlive the script's clean-up below.
setsid "$BAY" server --port "$PORT" --data-dir "$DATA" --templates "$REPO/examples/templates" \
  >"$REPO/.demo/server.log" 2>&1 </dev/null &
server=$!

stop() {
  trap - INT TERM EXIT
  log "deleting the demo space and stopping the server"
  if [ -n "${BAY_TOKEN:-}" ] && ! "$BAY" space delete demo --wait >/dev/null 2>&1; then
    "$BAY" space show demo >/dev/null 2>&1 && echo "could not delete the demo space: see $REPO/.demo/server.log" >&2
  fi
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap stop INT TERM EXIT

for _ in $(seq 100); do
  "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$BAY_SERVER/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$REPO/.demo/server.log" >&2; exit 1; }
  sleep 0.2
done
export BAY_TOKEN="$(cat "$DATA/admin-token")"

log "creating the space 'demo' from the template 'demo'"
status=0
"$BAY" space create demo --template demo --wait || status=$?
if [ "$status" = 8 ]; then
  log "the space 'demo' exists already (a live one from an earlier run)"
elif [ "$status" != 0 ]; then
  exit "$status"
fi
"$BAY" space show demo
web="$("$BAY" space show demo -o json | "$VENV/bin/python" -c \
  'import json,sys; print(next(s for s in json.load(sys.stdin)["services"] if s["name"]=="web")["endpoints"]["web"])')"

cat <<INFO

  Launchbay is running:  $BAY_SERVER/   (API docs: $BAY_SERVER/docs)
  The demo space's web:  $web
  Admin token:           $DATA/admin-token
  Try:                   . .venv/bin/activate && bay space list

  Press Ctrl-C to delete the demo space and stop the server.
INFO
echo "demo ready: $web"
wait "$server"
