#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then lint, types,
# layering, and every test (unit, store on SQLite and a real PostgreSQL, runtime contract,
# end to end against a real server, the portal in a real Chromium, README examples).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO"

ensure_venv dev
ensure_postgres
apt_install chromium   # the portal's browser tests run in Debian's headless Chromium
apt_install zsh fish    # `bay completion` is tried in the real shells
apt_install bubblewrap  # process services run in a sandbox of their own
ensure_docker          # the compose runtime's tests run on a real Docker Engine
ensure_helm            # every chart is linted and rendered by the real helm binary

log "ruff"
"$VENV/bin/ruff" check launchbay tests bench examples
"$VENV/bin/ruff" format --check launchbay tests bench examples
log "mypy --strict"
"$VENV/bin/mypy"
log "import-linter (layering)"
"$VENV/bin/lint-imports"

log "pytest"
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
