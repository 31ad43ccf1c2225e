#!/usr/bin/env bash
# npm run gpu:bundle — prepares the git-ignored .gpu-bundle/ that scripts/gpu/run.sh needs on an
# NVIDIA machine with Python but no Node (see /work/shared/gpu/README.md for the recipe):
#   node.xz          this machine's node binary, xz-compressed
#   modules.tar.xz   onnxruntime-node (linux-x64 binaries) + onnxruntime-common, sharp and its
#                    linux-x64 packages (externals of the bundled benchmark)
#   bench-engine.cjs scripts/bench-engine.ts bundled with esbuild
#   profile-decode.cjs scripts/bench/profile-decode.ts bundled (step time vs cache length, profile)
#   vision-formats.cjs scripts/bench/vision-formats.ts bundled (the vision tower per weight format)
#   preprocess.cjs   scripts/bench/preprocess.ts bundled (screenshot preprocessing, resize workers)
#   resize-worker.cjs the image resize's worker threads, which the bundles look for beside them
#   capture-decode.cjs scripts/bench/capture-decode.ts bundled (decode steps with WebGPU graph
#                    capture through onnxruntime-web)
#   int4-kernel-rows.cjs scripts/bench/int4-kernel-rows.ts bundled (int4 matrix multiplies of a
#                    step over 1-1,024 rows per storage format, onnxruntime-node and -web)
#   web.tar.xz       what that needs beyond onnxruntime-node (dev dependencies): onnxruntime-web's
#                    WebGPU build (its CommonJS entry and the asyncify WebAssembly) and the webgpu
#                    package's linux-x64 dawn.node
#   root/            what the benchmark reads from the repository: the 2B tensor layout and the
#                    tiny fixture's tokenizer, template and processor files (also the processor
#                    the transformers baseline loads)
#   debs/            Debian's libvulkan1 (the Vulkan loader WebGPU needs there), libegl1 and
#                    libglvnd0 (NVIDIA's Vulkan driver needs libEGL.so.1 and gives no instance
#                    without it)
# About 53 MB. The device tool's 64 MiB limit also counts the repository's tracked files (about
# 32 MB, mostly test fixtures), so run.sh was run from a throwaway branch holding only
# scripts/gpu/ (commit everything first: `git clean` removes uncommitted work):
#   git checkout -b gpu-run && git ls-files | grep -v '^scripts/gpu/' | grep -v '^\.gitignore$' |
#     xargs git rm -q --cached && git commit -qm tmp && git clean -fdq
# and afterwards `git checkout main && git branch -D gpu-run` restores the tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.gpu-bundle
rm -rf "$OUT"
mkdir -p "$OUT/root/test/fixtures/qwen3vl-tiny/model" "$OUT/debs"

echo "bundling scripts/bench-engine.ts, scripts/bench/profile-decode.ts, vision-formats.ts, preprocess.ts, capture-decode.ts, int4-kernel-rows.ts, the resize worker ..."
for entry in scripts/bench-engine.ts scripts/bench/profile-decode.ts scripts/bench/vision-formats.ts \
  scripts/bench/preprocess.ts scripts/bench/capture-decode.ts scripts/bench/int4-kernel-rows.ts \
  server/engine/preprocess/resize-worker.ts; do
  npx esbuild "$entry" --bundle --platform=node --format=cjs --target=node20 \
    --external:onnxruntime-node --external:sharp --external:onnxruntime-web --external:webgpu \
    --log-level=warning --outfile="$OUT/$(basename "$entry" .ts).cjs"
done

echo "packing onnxruntime-web's WebGPU build and webgpu's linux-x64 dawn.node for capture-decode, int4-kernel-rows ..."
tar cJf "$OUT/web.tar.xz" -C node_modules \
  onnxruntime-web/package.json onnxruntime-web/dist/ort.webgpu.min.js \
  onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.mjs \
  onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm \
  webgpu/package.json webgpu/index.js webgpu/dist/linux-x64/dawn.node

echo "compressing node ($(node --version)) ..."
xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$OUT/node.xz"

echo "packing onnxruntime-node and sharp (linux-x64) ..."
tar cJf "$OUT/modules.tar.xz" -C node_modules \
  onnxruntime-node/dist onnxruntime-node/package.json onnxruntime-node/bin/napi-v6/linux/x64 \
  onnxruntime-common \
  sharp @img/colour @img/sharp-linux-x64 @img/sharp-libvips-linux-x64 detect-libc semver

cp test/fixtures/qwen3vl_2b_layout.json "$OUT/root/test/fixtures/"
for f in tokenizer.json tokenizer_config.json chat_template.jinja preprocessor_config.json \
  processor_config.json generation_config.json config.json; do
  cp "test/fixtures/qwen3vl-tiny/model/$f" "$OUT/root/test/fixtures/qwen3vl-tiny/model/"
done
xz -T2 -9 "$OUT/root/test/fixtures/qwen3vl-tiny/model/tokenizer.json"

echo "downloading Debian's libvulkan1, libegl1, libglvnd0 ..."
DEBS="libvulkan1:amd64 libegl1:amd64 libglvnd0:amd64"
if ! (cd "$OUT/debs" && apt-get download $DEBS >/dev/null 2>&1); then
  (apt-get update >/dev/null 2>&1 || true)
  (cd "$OUT/debs" && apt-get download $DEBS)
fi

du -sh "$OUT"/* | sed 's/^/  /'
echo "total $(du -sh "$OUT" | cut -f1) in $OUT (run there: bash scripts/gpu/run.sh)"
