#!/usr/bin/env bash
# The one test command (`npm test`): installs what the tests need on a clean Debian machine,
# then runs every stage in order and ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_COUNTS_FILE="$PWD/test-results/counts.txt"
mkdir -p test-results
: >"$TEST_COUNTS_FILE"

stage() { printf '\n=== %s ===\n' "$*"; }

stage 'install'
# onnxruntime-node's install script downloads CUDA libraries (offline it fails); .npmrc says
# skip too, but npm warns that it will stop passing such project settings on.
[ -d node_modules/.bin ] || ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}" npm ci --no-audit --no-fund

stage 'type-check'
npm run --silent typecheck

stage 'lint'
npm run --silent lint

stage 'format'
npm run --silent format:check

stage 'build'
npm run --silent build

# A failing test stage lets the later ones run, so one run reports every failure; the
# summary's exit status says whether any failed. A step that the next stages need (the test
# environment, the .vsix) counts as one failure when it breaks, and they are skipped.
failed=0
run_tests() { "$@" || failed=1; }
broken() {
  echo "$1 failed: the stages that need it are skipped (counted as one failure)" >&2
  echo "0 1 0" >>"$TEST_COUNTS_FILE"
  failed=1
}

stage 'WebGPU without a GPU: Mesa software Vulkan (lavapipe)'
# The engine's WebGPU tests run over it; where it cannot be installed they are skipped (and
# counted as skipped) instead of failing the run.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
if bash scripts/setup-vulkan.sh; then
  export DESIGN_TO_CODE_TEST_WEBGPU=required
else
  echo 'setup-vulkan failed: the WebGPU engine tests will be skipped' >&2
fi

# Before the unit tests: the webview suites among them drive Chromium (they skip without it).
stage 'test environment: Chromium, Node 24, code-server (cached in .tools/)'
env_ready=0
if bash scripts/setup-test-env.sh; then env_ready=1; else broken 'setup-test-env'; fi

stage 'unit, engine and server tests'
run_tests npx mocha

stage 'package: the linux-x64 .vsix and its contents'
packaged=0
if npm run --silent package; then
  packaged=1
  run_tests npx mocha --config test/e2e/.mocharc.json test/e2e/vsix-contents.test.ts
else
  broken 'npm run package'
fi

if [ "$env_ready" = 1 ]; then
  stage 'extension integration tests: code-server extension host'
  run_tests npm run --silent test:extension
fi

if [ "$env_ready" = 1 ] && [ "$packaged" = 1 ]; then
  stage 'end to end: the installed .vsix in code-server, driven by Chromium'
  run_tests npx mocha --config test/e2e/.mocharc.json test/e2e/user-journey.test.ts
fi

stage 'summary'
awk -v failed="$failed" '{ p += $1; f += $2; s += $3 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s; exit (f > 0 || failed) }' "$TEST_COUNTS_FILE"
