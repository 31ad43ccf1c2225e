// node capture-probe.mjs MODEL.onnx [--runs N] [--modes node,web,capture]
//
// Does WebGPU graph capture remove the host time of a decode step? onnxruntime-node 1.30 cannot
// turn it on (its binding rejects `enableGraphCapture`), onnxruntime-web can: its WebGPU build
// is the same C++ provider compiled to WebAssembly, and in Node it runs on Dawn's own Node
// binding (the `webgpu` package). This times one graph, in one process, rounds alternating:
//   node     onnxruntime-node's WebGPU provider (every output on the GPU but the last)
//   web      onnxruntime-web on dawn.node, inputs and outputs in GPU buffers
//   capture  the same with enableGraphCapture (the first run records, later runs replay)
// Every run reads the last output back to the host (as a decode step reads its logits), and the
// modes' last outputs are compared. Meant for the int4 stand-in bench-engine writes under
// BENCH_CACHE_DIR/int4-kernel (MatMulNBits of every decode step's matrix, 113 dispatches for
// the 2B layout). Needs onnxruntime-node, onnxruntime-web and webgpu on NODE_PATH.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
// ES imports ignore NODE_PATH, where the GPU script unpacks the packages; require resolves them.
const importResolved = (name) => import(pathToFileURL(require.resolve(name)).href);
const args = process.argv.slice(2);
const model = args[0];
const option = (flag, fallback) => {
  const at = args.indexOf(flag);
  return at < 0 ? fallback : args[at + 1];
};
const runs = Number(option('--runs', 40));
const modes = option('--modes', 'node,web,capture').split(',');
if (!model) throw new Error('usage: node capture-probe.mjs MODEL.onnx [--runs N] [--modes ...]');

const bytes = new Uint8Array(readFileSync(model));
const dataFile = model.replace(/\.onnx$/, '.data');
const externalData = [{ path: basename(dataFile), data: new Uint8Array(readFileSync(dataFile)) }];

/**
 * Float16 bits of the activations' value, which changes from round to round (0.1, 0.2, 0.3), so
 * a replay that did not run would show as a difference from the other modes.
 */
const ACTIVATIONS = [0x2e66, 0x3266, 0x34cd];
const elementBytes = { float16: 2, float32: 4 };

async function nodeRunner() {
  const ort = require('onnxruntime-node');
  const probe = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'] });
  const outputs = probe.outputNames;
  await probe.release();
  const last = outputs[outputs.length - 1];
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    preferredOutputLocation: Object.fromEntries(
      outputs.map((name) => [name, name === last ? 'cpu' : 'gpu-buffer']),
    ),
  });
  const feedsFor = (bits) =>
    Object.fromEntries(
      session.inputNames.map((name, i) => {
        const dims = session.inputMetadata[i].shape;
        const count = dims.reduce((a, b) => a * b, 1);
        return [name, new ort.Tensor('float16', new Uint16Array(count).fill(bits), dims)];
      }),
    );
  const feedsByValue = ACTIVATIONS.map(feedsFor);
  return {
    async run(round) {
      const result = await session.run(feedsByValue[round % ACTIVATIONS.length]);
      const data = result[last].data.slice();
      for (const tensor of Object.values(result)) tensor.dispose();
      return data;
    },
    release: () => session.release(),
  };
}

/**
 * onnxruntime-web's threaded WebAssembly memory is a SharedArrayBuffer, and dawn.node's
 * queue.writeBuffer refuses views of one ("Invalid argument"): such writes go through a copy.
 */
function copySharedWrites() {
  const proto = globalThis.GPUQueue.prototype;
  const write = proto.writeBuffer;
  proto.writeBuffer = function (buffer, offset, data, dataOffset = 0, size) {
    if (!ArrayBuffer.isView(data) || !(data.buffer instanceof SharedArrayBuffer)) {
      return write.call(this, buffer, offset, data, dataOffset, size);
    }
    const unit = data.BYTES_PER_ELEMENT ?? 1;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const start = dataOffset * unit;
    const end = size === undefined ? bytes.length : start + size * unit;
    return write.call(this, buffer, offset, bytes.slice(start, end));
  };
}

/**
 * onnxruntime-web 1.30 registers a run's GPU buffers with its WebGPU module at the start of the
 * run and releases their handles at the end; a captured graph keeps the first run's handles, so
 * its replay binds released ones (dawn.node: "no overload matched for createBindGroup"). The
 * module never releases buffers it allocated itself: their registration count is NaN. This
 * gives the probe's buffers the same count, by catching the registration on the buffer object
 * (the module keeps it under a symbol, learned from one buffer the module allocated).
 */
let registrationSymbol;
/** y = x + x on float16 [1, 4]: the smallest graph whose output the module allocates. */
const ADD_GRAPH =
  'CAkSDmRlc2lnbi10by1jb2RlOkoKGAoBeAoBeBIBeRoGbjBfQWRkIgNBZGQ6ABIEbWluaVoTCgF4Eg4KDAgKEggKAggBCgIIBGITCgF5Eg4KDAgKEggKAggBCgIIBEIECgAQFUIRCg1jb20ubWljcm9zb2Z0EAE=';
async function keepRegistered(ort, tensors) {
  if (!registrationSymbol) {
    const ownsBuffers = await ort.InferenceSession.create(Buffer.from(ADD_GRAPH, 'base64'), {
      executionProviders: ['webgpu'],
      preferredOutputLocation: 'gpu-buffer',
    });
    const x = new ort.Tensor('float16', new Uint16Array(4), [1, 4]);
    const { y } = await ownsBuffers.run({ x });
    registrationSymbol = Object.getOwnPropertySymbols(y.gpuBuffer)[0];
    await ownsBuffers.release();
    if (!registrationSymbol) throw new Error('onnxruntime-web keeps no registration on buffers');
  }
  for (const tensor of tensors) {
    let registration;
    Object.defineProperty(tensor.gpuBuffer, registrationSymbol, {
      configurable: true,
      get: () => registration,
      set: (value) => {
        registration = value && [value[0], NaN];
      },
    });
  }
}

async function webRunner(capture) {
  const { create, globals } = await importResolved('webgpu');
  if (!globalThis.navigator?.gpu) {
    Object.assign(globalThis, globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) } });
    copySharedWrites();
  }
  const loaded = await importResolved('onnxruntime-web/webgpu');
  const ort = loaded.default ?? loaded;
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    enableGraphCapture: capture,
    preferredOutputLocation: 'gpu-buffer',
    externalData,
  });
  const device = ort.env.webgpu.device;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const gpuTensor = (dataType, dims) => {
    const count = dims.reduce((a, b) => a * b, 1);
    const size = Math.ceil((count * elementBytes[dataType]) / 16) * 16;
    const buffer = device.createBuffer({ size, usage });
    const download = async () => {
      const staging = device.createBuffer({
        size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(buffer, 0, staging, 0, size);
      device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const data = staging.getMappedRange().slice(0, count * elementBytes[dataType]);
      staging.destroy();
      return dataType === 'float32' ? new Float32Array(data) : new Uint16Array(data);
    };
    // Read with `download` itself: Tensor.getData() would leave the tensor on the CPU for the
    // next run.
    const fill = (bits) => device.queue.writeBuffer(buffer, 0, new Uint16Array(count).fill(bits));
    return { tensor: ort.Tensor.fromGpuBuffer(buffer, { dataType, dims }), download, fill };
  };
  const feeds = {};
  const fills = [];
  for (const [i, name] of session.inputNames.entries()) {
    const { tensor, fill } = gpuTensor('float16', session.inputMetadata[i].shape);
    fill(ACTIVATIONS[0]);
    feeds[name] = tensor;
    fills.push(fill);
  }
  if (capture) await keepRegistered(ort, Object.values(feeds));
  const fetches = {};
  let readLast;
  for (const [i, name] of session.outputNames.entries()) {
    const meta = session.outputMetadata[i];
    const { tensor, download } = gpuTensor(meta.type, meta.shape);
    fetches[name] = tensor;
    readLast = download;
    if (capture) await keepRegistered(ort, [tensor]);
  }
  return {
    async run(round) {
      // The step's new inputs are written into the same buffers, as a captured step needs.
      for (const fill of fills) fill(ACTIVATIONS[round % ACTIVATIONS.length]);
      await session.run(feeds, fetches);
      return readLast();
    },
    release: () => session.release(),
  };
}

const runners = {};
for (const mode of modes) {
  runners[mode] = mode === 'node' ? await nodeRunner() : await webRunner(mode === 'capture');
}
const times = Object.fromEntries(modes.map((mode) => [mode, []]));
const maxDiff = Object.fromEntries(modes.map((mode) => [mode, 0]));
const largest = (a, b) => a.reduce((max, value, i) => Math.max(max, Math.abs(value - b[i])), 0);
// How much the first mode's output moved between rounds: replays that did not run would leave
// theirs still, and differ from it by about that much.
let roundChange = Infinity;
let previous;
for (let round = 0; round < runs + 3; round++) {
  const outputs = {};
  for (const mode of modes) {
    const started = performance.now();
    outputs[mode] = await runners[mode].run(round);
    if (round >= 3) times[mode].push(performance.now() - started);
  }
  for (const mode of modes) {
    maxDiff[mode] = Math.max(maxDiff[mode], largest(outputs[mode], outputs[modes[0]]));
  }
  if (previous) roundChange = Math.min(roundChange, largest(outputs[modes[0]], previous));
  previous = outputs[modes[0]];
}
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const result = { probe: 'webgpu_capture', model: basename(model), runs, round_change: roundChange };
for (const mode of modes) {
  result[`${mode}_ms`] = +median(times[mode]).toFixed(3);
  result[`${mode}_best_ms`] = +Math.min(...times[mode]).toFixed(3);
  result[`${mode}_max_diff`] = maxDiff[mode];
}
if (times.node && times.capture)
  result.capture_vs_node = +(result.capture_ms / result.node_ms).toFixed(3);
if (times.web && times.capture)
  result.capture_vs_web = +(result.capture_ms / result.web_ms).toFixed(3);
console.log(JSON.stringify(result));
for (const runner of Object.values(runners)) await runner.release();
process.exit(0);
