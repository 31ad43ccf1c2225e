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

stage 'unit, engine and server tests'
npx mocha

stage 'summary'
awk '{ p += $1; f += $2; s += $3 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s; exit (f > 0) }' "$TEST_COUNTS_FILE"
