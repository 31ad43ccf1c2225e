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
[ -d node_modules/.bin ] || npm ci --no-audit --no-fund

stage 'type-check'
npm run --silent typecheck

stage 'format'
npm run --silent format:check

stage 'build'
npm run --silent build

# A failing test stage lets the later ones run, so one run reports every failure; the
# summary's exit status says whether any failed.
failed=0
run_tests() { "$@" || failed=1; }

stage 'unit, engine and server tests'
run_tests npx mocha

stage 'test environment: Chromium, Node 24, code-server (cached in .tools/)'
bash scripts/setup-test-env.sh

stage 'package: the linux-x64 .vsix and its contents'
npm run --silent package
run_tests npx mocha --config test/e2e/.mocharc.json test/e2e/vsix-contents.test.ts

stage 'extension integration tests: code-server extension host'
run_tests npm run --silent test:extension

stage 'end to end: the installed .vsix in code-server, driven by Chromium'
run_tests npx mocha --config test/e2e/.mocharc.json test/e2e/user-journey.test.ts

stage 'summary'
awk -v failed="$failed" '{ p += $1; f += $2; s += $3 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s; exit (f > 0 || failed) }' "$TEST_COUNTS_FILE"
