#!/usr/bin/env bash
# WebGPU for the engine tests on a machine without a GPU: onnxruntime-node's WebGPU provider
# (Dawn) runs over Mesa's software Vulkan driver (lavapipe), so the GPU build, its KV cache
# hand-over and gpu-buffer outputs are tested on every CI run. Dawn refuses Mesa 22 (no
# shaderUniform*ArrayDynamicIndexing), so on Debian 12 the driver comes from bookworm-backports.
# Idempotent: a second run only checks the installed version.
set -euo pipefail

log() { printf '[setup-vulkan] %s\n' "$*" >&2; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
recent_enough() {
  local v
  v="$(mesa_version)"
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 23 && dpkg-query -W libvulkan1 >/dev/null 2>&1
}

if recent_enough; then
  log "Mesa Vulkan drivers $(mesa_version) present"
  exit 0
fi
command -v apt-get >/dev/null || {
  log 'not a Debian system: install Mesa >= 23 (lavapipe) and libvulkan1 yourself'
  exit 1
}
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
release=()
if [ "$codename" = bookworm ]; then
  list=/etc/apt/sources.list.d/design-to-code-bookworm-backports.list
  [ -f "$list" ] || echo 'deb http://deb.debian.org/debian bookworm-backports main' | as_root tee "$list" >/dev/null
  release=(-t bookworm-backports)
fi
start=$SECONDS
log "apt-get install ${release[*]} mesa-vulkan-drivers libvulkan1"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${release[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
recent_enough || {
  log "Mesa $(mesa_version) is too old for Dawn (needs >= 23)"
  exit 1
}
log "Mesa Vulkan drivers $(mesa_version) installed in $((SECONDS - start))s"
