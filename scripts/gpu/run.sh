#!/usr/bin/env bash
# bash scripts/gpu/run.sh — the GPU benchmark, one command, on an NVIDIA machine with Python,
# torch and transformers but no Node. Needs .gpu-bundle/ from `npm run gpu:bundle`.
#
# 1. transformers baseline (scripts/gpu/transformers_baseline.py): a Qwen3-VL-2B-sized model with
#    random bf16 weights, sdpa; eager generate and a compiled static-cache generate (warm
#    repetition), plus prompt-lookup generate on a refinement; 1280x800 and 1920x1080.
# 2. this engine on onnxruntime-node's WebGPU provider (Vulkan): the same shapes, int4 and fp16:
#    preprocessing, vision, time to first token, decode tokens/s, refinement first token with KV
#    reuse vs cold, plain vs speculative decode, peak GPU memory (nvidia-smi, sampled).
# Everything it builds goes under $WORK (default /tmp/d2c-gpu); results print as it goes and each
# line lands at once in $OUT/results.jsonl when $OUT is set (the device tool's output folder, so
# a run cut off by the tool's time limit still returns what it finished), else in $WORK.
# JOBS lists what runs, in order, most wanted first, so a run cut short still returns the key
# figures: "engine:PRECISION:WxH[:ARGS]" (ARGS: more bench-engine arguments, comma-separated, e.g.
# --draft-tokens,8,--run-cost,linear:0.25 for the draft planner before device curves, or
# --graph-capture,4096 for the decoder with WebGPU graph capture on onnxruntime-web, and
# --graph-capture-verify,32 for its captured runs of up to 32 tokens: speculative verification
# and a refinement's new message),
# "vision:WxH" (the vision tower in fp16 and in 8- and 4-bit MatMulNBits, timed in one process,
# with a GPU kernel profile of each: scripts/bench/vision-formats.ts), "preprocess" (a screenshot's
# preprocessing at four sizes, the resize on one thread and on the workers: bench:preprocess),
# "capture[:PRECISION]" (greedy decoding of the 2B model in one process: the engine's decoder on
# onnxruntime-node, then the static decode step on onnxruntime-web without and with WebGPU graph
# capture, which onnxruntime-node cannot turn on, and captured with each step taking the last
# one's token on the GPU; then captured runs of 4, 17 and 32 tokens, since onnxruntime's source
# compiles the subgroup-matrix MatMulNBits that onnxruntime-node runs for 4+ rows out of
# WebAssembly builds: scripts/bench/capture-decode.ts; int4 unless told; CAPTURE_ARGS replaces
# "--verify-rows 4,17,32"),
# "kernels[:FORMATS]" (a decode step's int4 matrix multiplies over 1 to 1,024 rows, per storage
# format, on onnxruntime-node and onnxruntime-web: whether another block size than 32 keeps runs
# of 4-64 tokens off the subgroup-matrix kernel and makes them cheaper; FORMATS like
# 32+sym+4/64+sym+4, scripts/bench/int4-kernel-rows.ts, its four GPU formats unless told),
# "baseline:WxH" or "profile:PRECISION[:OPTIONS]" (decode step
# time against the cache length, verification runs of 1-33 tokens with every logit or the best
# only, and an onnxruntime profile with GPU kernel times, summarized;
# OPTIONS: WebGPU provider options to compare, e.g. validationMode=disabled; PROFILE_RUN_TOKENS=N
# profiles verification runs of N tokens instead of steps). CASE_LIMIT_S bounds each engine case (a hung
# GPU run loses one case, not the rest).
# BENCH_MODEL=DIR measures that checkpoint instead of the 2B-sized random one (a quick check of
# this script: the tiny test fixture).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BUNDLE=$REPO/.gpu-bundle
WORK=${WORK:-/tmp/d2c-gpu}
TOKENS=${TOKENS:-64}
CASE_LIMIT_S=${CASE_LIMIT_S:-240}
JOBS=${JOBS:-capture engine:int4:1280x800 kernels \
engine:int4:1280x800:--graph-capture,4096,--graph-capture-verify,32 baseline:1280x800 vision:1280x800 profile:int4 engine:int4:1920x1080:--graph-capture,4096 \
engine:int4:1280x800:--draft-tokens,8,--run-cost,linear:0.25 engine:int4:1920x1080 \
engine:fp16:1280x800 baseline:1920x1080 engine:fp16:1920x1080 preprocess}
mkdir -p "$WORK"
RESULTS=${OUT:+$OUT/results.jsonl}
RESULTS=${RESULTS:-$WORK/results.jsonl}
: > "$RESULTS"
[ -d "$BUNDLE" ] || { echo "missing $BUNDLE: run 'npm run gpu:bundle' where Node is installed" >&2; exit 2; }

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== unpacking Node, onnxruntime-node, sharp, the Vulkan loader"
xz -dc "$BUNDLE/node.xz" > "$WORK/node" && chmod +x "$WORK/node"
mkdir -p "$WORK/node_modules" && tar xJf "$BUNDLE/modules.tar.xz" -C "$WORK/node_modules"
tar xJf "$BUNDLE/web.tar.xz" -C "$WORK/node_modules"
rm -rf "$WORK/root" && cp -r "$BUNDLE/root" "$WORK/root"
xz -d "$WORK/root/test/fixtures/qwen3vl-tiny/model/tokenizer.json.xz"
# The bundles look for resize-worker.cjs beside them (image resizing on worker threads).
cp "$BUNDLE/bench-engine.cjs" "$BUNDLE/profile-decode.cjs" "$BUNDLE/vision-formats.cjs" \
  "$BUNDLE/preprocess.cjs" "$BUNDLE/resize-worker.cjs" "$BUNDLE/capture-decode.cjs" \
  "$BUNDLE/int4-kernel-rows.cjs" "$WORK/"
for deb in "$BUNDLE"/debs/*.deb; do dpkg -x "$deb" / 2>/dev/null || dpkg -x "$deb" "$WORK/vulkan"; done
# NVIDIA's Vulkan driver (libGLX_nvidia) loads libEGL.so.1 (glvnd) and returns no vkCreateInstance
# without it: containers with "graphics" capabilities but no libegl1 fail with "Found no drivers".
if [ ! -e /usr/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
  mkdir -p /usr/share/glvnd/egl_vendor.d
  echo '{"file_format_version":"1.0.0","ICD":{"library_path":"libEGL_nvidia.so.0"}}' \
    > /usr/share/glvnd/egl_vendor.d/10_nvidia.json
fi
ldconfig 2>/dev/null || true
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:$WORK/vulkan/usr/lib/x86_64-linux-gnu
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
  /etc/vulkan/icd.d/nvidia_icd.json $(find /usr /etc -name 'nvidia_icd*.json' 2>/dev/null); do
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd && break
done
echo "node $("$WORK/node" --version), VK_DRIVER_FILES=${VK_DRIVER_FILES:-none found}"

export NODE_PATH=$WORK/node_modules
export BENCH_ROOT=$WORK/root BENCH_CACHE_DIR=$WORK/bench-engine
echo "onnxruntime-node $("$WORK/node" -p "require('$WORK/node_modules/onnxruntime-node/package.json').version")"

baseline() { # baseline WxH: transformers, bf16, sdpa: eager, static cache compiled (warm), lookup
  echo "== transformers baseline $1"
  python3 scripts/gpu/transformers_baseline.py \
    --layout "$WORK/root/test/fixtures/qwen3vl_2b_layout.json" \
    --processor "$WORK/root/test/fixtures/qwen3vl-tiny/model" \
    --tokens "$TOKENS" --images "$1" --results "$RESULTS" 2>&1 | grep -v Warning
}

engine() { # engine PRECISION WxH [ARGS]: this engine on WebGPU, peak GPU memory sampled by nvidia-smi
  local precision=$1 image=$2 extra=${3:-} used peakfile=$WORK/peak-$1-$2 sampler line status peak
  echo "== this engine on WebGPU, $precision $image"
  used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  echo 0 > "$peakfile"
  ( while :; do
      now=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
      [ "$now" -gt "$(cat "$peakfile")" ] && echo "$now" > "$peakfile"
      sleep 0.2
    done ) &
  sampler=$!
  line=$(timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/bench-engine.cjs" --device webgpu \
    --precision "$precision" --image "$image" --tokens "$TOKENS" \
    ${BENCH_MODEL:+--model "$BENCH_MODEL"} ${extra//,/ } --json)
  status=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  peak=$(( $(cat "$peakfile") - used ))
  if [ $status -ne 0 ] || [ -z "$line" ]; then
    echo "{\"engine\":\"onnxruntime-webgpu\",\"precision\":\"$precision\",\"image\":\"$image\",\"error\":\"exit $status\"}" | tee -a "$RESULTS"
    return
  fi
  echo "${line%\}},\"engine\":\"onnxruntime-webgpu\",\"peak_gpu_mb\":$peak}" | tee -a "$RESULTS"
}

profile() { # profile PRECISION [OPTIONS]: where a decode step's time goes on WebGPU
  local dir=${OUT:-$WORK}/profile-$1${2:+-${2//[^a-zA-Z0-9]/_}}
  local model=${BENCH_MODEL:-$WORK/bench-engine/qwen3vl-2b-random}
  echo "== decode step profile on WebGPU, $1 ${2:-(default provider options)}"
  timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/bench-engine.cjs" --prepare --device webgpu \
    --precision "$1" ${BENCH_MODEL:+--model "$BENCH_MODEL"} || return
  timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/profile-decode.cjs" --model "$model" \
    --cache "$WORK/bench-engine/onnx" --device webgpu --precision "$1" --out "$dir" \
    ${2:+--webgpu "$2"} ${PROFILE_RUN_TOKENS:+--profile-run-tokens "$PROFILE_RUN_TOKENS"} |
    tee -a "$RESULTS"
  for json in "$dir"/*.json; do
    python3 scripts/gpu/summarize_profile.py "$json" | tee "$dir/summary.txt"
    xz -T0 "$json"
  done
}

capture() { # capture [PRECISION]: the engine's decode steps vs the static step, captured or not
  local precision=${1:-int4}
  local model=${BENCH_MODEL:-$WORK/bench-engine/qwen3vl-2b-random}
  echo "== WebGPU graph capture of decode steps, $precision"
  timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/bench-engine.cjs" --prepare --device webgpu \
    --precision "$precision" ${BENCH_MODEL:+--model "$BENCH_MODEL"} || return
  timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/capture-decode.cjs" --model "$model" \
    --cache "$WORK/bench-engine/onnx" --precision "$precision" ${CAPTURE_ARGS:---verify-rows 4,17,32} --json |
    tee -a "$RESULTS"
}

kernels() { # kernels [FORMATS]: int4 matrix multiplies by run rows and format, both runtimes
  local formats=${1//+/:} runtime
  for runtime in node web; do
    echo "== int4 matrix multiplies by rows, onnxruntime-$runtime WebGPU"
    timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/int4-kernel-rows.cjs" --runtime "$runtime" \
      --cache "$WORK/int4-kernel" ${formats:+--formats "${formats//\//,}"} \
      ${BENCH_MODEL:+--config "$BENCH_MODEL/config.json"} | tee -a "$RESULTS" ||
      echo "int4-kernel-rows on onnxruntime-$runtime failed or ran past CASE_LIMIT_S=$CASE_LIMIT_S s (it prints at the end)"
  done
}

preprocess() { # a pasted screenshot's preprocessing on this machine's cores
  echo "== preprocessing"
  timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/preprocess.cjs" --json | tee -a "$RESULTS"
}

vision() { # vision WxH: the vision tower per weight format on WebGPU, with a GPU profile of each
  local model=${BENCH_MODEL:-$WORK/bench-engine/qwen3vl-2b-random} dir=${OUT:-$WORK}/vision-$1
  echo "== vision tower formats on WebGPU, $1"
  timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/bench-engine.cjs" --prepare --device webgpu \
    --precision int4 ${BENCH_MODEL:+--model "$BENCH_MODEL"} || return
  mkdir -p "$dir"
  timeout "$CASE_LIMIT_S" "$WORK/node" "$WORK/vision-formats.cjs" --model "$model" \
    --device webgpu --image "$1" --profile "$dir" | tee -a "$RESULTS"
  for json in "$dir"/*.json; do
    python3 scripts/gpu/summarize_profile.py "$json" 1 | tee "${json%.json}.txt"
    xz -T0 "$json"
  done
}

for job in $JOBS; do
  IFS=: read -r kind a b c <<< "$job"
  case $kind in
    baseline) baseline "$a" ;;
    engine) engine "$a" "$b" "$c" ;;
    profile) profile "$a" "$b" ;;
    vision) vision "$a" ;;
    preprocess) preprocess ;;
    capture) capture "$a" ;;
    kernels) kernels "$a" ;;
    *) echo "unknown job $job (engine:PRECISION:WxH, vision:WxH, baseline:WxH, profile:PRECISION, capture[:PRECISION], kernels[:FORMATS] or preprocess)" >&2 ;;
  esac
done

echo "== summary"
python3 scripts/gpu/summarize.py "$RESULTS"
exit 0
