// Which files of a runtime package belong in a platform .vsix: native binaries for the
// target platform only (onnxruntime-node ships every platform in one package; other native
// packages use prebuilds/<os>-<cpu>/), and no source maps, TypeScript sources or declarations.

export interface Target {
  os: string; // process.platform values: linux, darwin, win32
  cpu: string; // process.arch values: x64, arm64
  name: string; // vsce's target name, e.g. linux-x64
}

const ONNXRUNTIME_PLATFORM_DIR = /^bin\/napi-v\d+\/([^/]+)(?:\/([^/]+))?/;
const PREBUILDS_DIR = /(?:^|\/)prebuilds\/([^/]+)/;

export function shouldShipFile(relativePath: string, packageName: string, target: Target): boolean {
  const file = relativePath.split('\\').join('/');
  if (/\.(map|ts|mts|cts)$/.test(file)) return false;
  if (packageName === 'onnxruntime-node') {
    const match = ONNXRUNTIME_PLATFORM_DIR.exec(file);
    if (match) return match[1] === target.os && (match[2] === undefined || match[2] === target.cpu);
    if (file === 'script' || file.startsWith('script/')) return false; // its install script
  }
  const prebuild = PREBUILDS_DIR.exec(file);
  if (prebuild) return prebuild[1] === `${target.os}-${target.cpu}`;
  return true;
}

function allows(list: string[] | undefined, value: string): boolean {
  if (!list || list.length === 0) return true;
  if (list.includes(`!${value}`)) return false;
  const positives = list.filter((entry) => !entry.startsWith('!'));
  return positives.length === 0 || positives.includes(value);
}

/** Whether a package's os/cpu/libc fields allow it on the target (glibc assumed on Linux). */
export function packageFitsTarget(
  manifest: { os?: string[]; cpu?: string[]; libc?: string[] },
  target: Target,
): boolean {
  if (!allows(manifest.os, target.os) || !allows(manifest.cpu, target.cpu)) return false;
  return target.os !== 'linux' || allows(manifest.libc, 'glibc');
}
