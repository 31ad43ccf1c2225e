/** bench:engine's command line (its usage is at the top of scripts/bench-engine.ts). */
import { resolve } from 'node:path';
import type { DeviceRequest, Precision } from '../../server/engine/contracts';

export interface Options {
  device: DeviceRequest;
  image: [number, number];
  precision: Precision;
  tokens: number;
  json: boolean;
  prepare: boolean;
  /** A checkpoint to measure instead of the generated 2B-sized random one. */
  modelDir?: string;
  /** Draft planner overrides (default: the engine's). */
  draftTokens?: number;
  runCostPerToken?: number;
  /** CPU int4: load the 8-bit prefill decoder (default: where memory allows). */
  prefillDecoder?: boolean;
  /** WebGPU: the graph-capture decoder with a cache of this many positions. */
  graphCapture?: number;
  graphCaptureVerify?: number;
  /** The longest prompt run (default the device's). */
  prefillChunk?: number;
}

export function parseArgs(argv: string[]): Options {
  const options: Options = {
    device: 'cpu',
    image: [512, 512],
    precision: 'int4',
    tokens: 32,
    json: false,
    prepare: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--device') options.device = value() as DeviceRequest;
    else if (arg === '--precision') options.precision = value() as Precision;
    else if (arg === '--tokens') options.tokens = Number(value());
    else if (arg === '--json') options.json = true;
    else if (arg === '--prepare') options.prepare = true;
    else if (arg === '--model') options.modelDir = resolve(value());
    else if (arg === '--draft-tokens') options.draftTokens = Number(value());
    else if (arg === '--graph-capture') options.graphCapture = Number(value());
    else if (arg === '--graph-capture-verify') options.graphCaptureVerify = Number(value());
    else if (arg === '--prefill-chunk') options.prefillChunk = Number(value());
    else if (arg === '--prefill-decoder') {
      const v = value();
      if (v !== 'on' && v !== 'off') throw new Error('--prefill-decoder takes on or off');
      options.prefillDecoder = v === 'on';
    } else if (arg === '--run-cost') {
      const m = /^linear:(\d*\.?\d+)$/.exec(value());
      if (!m)
        throw new Error('--run-cost takes linear:X, X steps per extra token, e.g. linear:0.25');
      options.runCostPerToken = Number(m[1]);
    } else if (arg === '--image') {
      const m = /^(\d+)x(\d+)$/.exec(value());
      if (!m) throw new Error('--image takes WIDTHxHEIGHT, e.g. 1280x800');
      options.image = [Number(m[1]), Number(m[2])];
    } else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}
