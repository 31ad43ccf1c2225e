// Checks the packaged .vsix (`npm run package`) holds what the extension needs on linux-x64
// and nothing it must not ship, then loads its native modules from the unpacked bundle.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AdmZip from 'adm-zip';
import { vsixPath } from '../harness/paths';

const root = path.resolve(__dirname, '../..');
const projectManifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

describe('packaged .vsix (linux-x64)', function () {
  let zip: AdmZip;
  let entries: string[];

  before(function () {
    zip = new AdmZip(vsixPath());
    entries = zip.getEntries().map((entry) => entry.entryName);
  });

  const has = (name: string) => entries.includes(`extension/${name}`);
  const under = (prefix: string) => entries.filter((e) => e.startsWith(`extension/${prefix}`));

  it('declares the linux-x64 target in its manifest', function () {
    const manifest = zip.readAsText('extension.vsixmanifest');
    assert.match(manifest, /TargetPlatform="linux-x64"/);
  });

  it('holds the manifest, LICENSE and every bundle that package.json points at or the server loads', function () {
    const shipped = JSON.parse(zip.readAsText('extension/package.json'));
    assert.equal(shipped.name, projectManifest.name);
    assert.equal(shipped.version, projectManifest.version);
    assert.ok(has(shipped.main.replace(/^\.\//, '')), `main ${shipped.main} is not in the vsix`);
    for (const file of [
      'dist/extension.js',
      'dist/cli.js',
      'dist/resize-worker.js',
      'dist/webview/panel.js',
      'dist/webview/preview.js',
    ]) {
      assert.ok(has(file), `${file} is not in the vsix`);
    }
    assert.ok(has('LICENSE.txt') || has('LICENSE'), 'LICENSE is not in the vsix');
  });

  it('ships onnxruntime-node with the linux-x64 binaries only', function () {
    assert.ok(has('node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node'));
    assert.ok(
      under('node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so').length > 0,
    );
    const otherPlatforms = under('node_modules/onnxruntime-node/bin/').filter(
      (e) => !e.includes('/linux/x64/'),
    );
    assert.deepEqual(otherPlatforms, []);
  });

  it('ships sharp with @img/sharp-linux-x64 and @img/sharp-libvips-linux-x64 only', function () {
    assert.ok(under('node_modules/sharp/').length > 0, 'sharp is not in the vsix');
    assert.ok(under('node_modules/@img/sharp-linux-x64/').some((e) => e.endsWith('.node')));
    assert.ok(
      under('node_modules/@img/sharp-libvips-linux-x64/').some((e) => /libvips-cpp\.so/.test(e)),
    );
    const sharpPlatforms = new Set(under('node_modules/@img/sharp-').map((e) => e.split('/')[3]));
    assert.deepEqual([...sharpPlatforms].sort(), ['sharp-libvips-linux-x64', 'sharp-linux-x64']);
  });

  it('ships no dev dependency, test fixture, source map, TypeScript source or model weights', function () {
    const devDependencies = Object.keys(projectManifest.devDependencies ?? {});
    const shippedDev = devDependencies.filter((name) => under(`node_modules/${name}/`).length > 0);
    assert.deepEqual(shippedDev, [], 'dev dependencies in the vsix');
    const forbidden = entries.filter(
      (e) =>
        e.includes('/test/') ||
        e.includes('fixtures') ||
        /\.(map|safetensors|onnx|f32)$/.test(e) ||
        (/\.ts$/.test(e) && !/\.d\.ts$/.test(e)),
    );
    assert.deepEqual(forbidden, []);
  });

  it('loads onnxruntime-node and sharp from the unpacked bundle and decodes the mockup', function () {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dtc-vsix-'));
    try {
      zip.extractAllTo(dir, true);
      const modules = path.join(dir, 'extension', 'node_modules');
      const image = path.join(root, 'test/fixtures/qwen3vl-tiny/images/mockup_320x256.png');
      const probe = `
        const ort = require(${JSON.stringify(path.join(modules, 'onnxruntime-node'))});
        const sharp = require(${JSON.stringify(path.join(modules, 'sharp'))});
        sharp(${JSON.stringify(image)}).metadata().then((m) => {
          console.log(JSON.stringify({ ort: typeof ort.InferenceSession.create, width: m.width, height: m.height }));
        });`;
      const output = execFileSync(process.execPath, ['-e', probe], { cwd: dir, encoding: 'utf8' });
      assert.deepEqual(JSON.parse(output), { ort: 'function', width: 320, height: 256 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
