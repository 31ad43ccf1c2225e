#!/usr/bin/env bash
# `npm start` / `npm run dev`: installs what is missing, builds, and opens a VS Code with the
# extension loaded from this working tree: the desktop `code` when it is installed, else
# code-server in the browser (installed under .tools/ by scripts/setup-test-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# onnxruntime-node's install script downloads CUDA libraries (offline it fails); .npmrc says
# skip too, but npm warns that it will stop passing such project settings on.
[ -d node_modules/.bin ] || ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}" npm ci --no-audit --no-fund
npm run --silent build

if command -v code >/dev/null 2>&1 && [ -z "${DESIGN_TO_CODE_USE_CODE_SERVER:-}" ]; then
  echo "Opening VS Code with the extension from $PWD (rebuild with: node esbuild.mjs --watch)"
  exec code --extensionDevelopmentPath="$PWD" "$PWD"
fi

bash scripts/setup-test-env.sh
exec npx tsx scripts/dev-code-server.ts "$@"
