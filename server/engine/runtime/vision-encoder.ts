/**
 * Runs the vision graph for one image: host tables in, image embeddings + DeepStack out. The
 * tower is one session or a chain of stage sessions (vision-graph.ts VisionStage), run one after
 * the other; between two stages a stop takes effect, and the image's progress is kept so that
 * the next request for the same image goes on from there instead of starting over.
 */
import * as ort from 'onnxruntime-node';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { EncodeOptions, VisionEncoder, VisionOutput } from '../contracts';
import { EngineError } from '../errors';
import { VISION_INPUTS, VISION_OUTPUTS, framePatchValues } from '../onnx/vision-graph';
import { positionTaps, visionRotary } from './vision-tables';

/** An image's tower stopped between stages: where it goes on from. */
interface Paused {
  key: string;
  nextStage: number;
  hidden: ort.Tensor;
  deepstack: Map<number, Float32Array>;
}

export class OnnxVisionEncoder implements VisionEncoder {
  private readonly stages: ort.InferenceSession[];
  /** One image's progress at most: the one stopped last. */
  private paused?: Paused;

  constructor(
    stages: ort.InferenceSession | ort.InferenceSession[],
    private readonly config: Qwen3VLConfig,
  ) {
    this.stages = Array.isArray(stages) ? stages : [stages];
  }

  /** Loads the tower's graphs (its stages in order) with `options`, see stageSessionOptions. */
  static async open(
    paths: string[],
    options: ort.InferenceSession.SessionOptions,
    config: Qwen3VLConfig,
  ): Promise<OnnxVisionEncoder> {
    if (paths.length === 0) throw new EngineError('internal', 'the build has no vision graph');
    const sessions: ort.InferenceSession[] = [];
    try {
      for (const path of paths) {
        sessions.push(await ort.InferenceSession.create(path, stageSessionOptions(options, paths)));
      }
    } catch (error) {
      await Promise.all(sessions.map((session) => session.release()));
      throw error;
    }
    return new OnnxVisionEncoder(sessions, config);
  }

  async release(): Promise<void> {
    this.paused = undefined;
    await Promise.all(this.stages.map((session) => session.release()));
  }

  async encode(
    pixelValues: Float32Array,
    gridThw: [number, number, number],
    options: EncodeOptions = {},
  ): Promise<VisionOutput> {
    const v = this.config.vision;
    const merge = v.spatialMergeSize;
    const [gt, gh, gw] = gridThw;
    const patches = gt * gh * gw;
    const patchIn = framePatchValues(v);
    if (gh % merge !== 0 || gw % merge !== 0 || patches === 0) {
      throw new EngineError(
        'bad_request',
        `image grid ${gridThw} must be non-empty with height and width multiples of ${merge}`,
      );
    }
    if (pixelValues.length !== patches * patchIn) {
      throw new EngineError(
        'bad_request',
        `pixel_values has ${pixelValues.length} values; grid ${gridThw} needs ${patches} x ${patchIn}`,
      );
    }
    const headDim = v.hiddenSize / v.numHeads;
    const rotary = visionRotary(gridThw, headDim, v.ropeTheta, merge);
    const tables = {
      [VISION_INPUTS.cos]: new ort.Tensor('float32', rotary.cos, [patches, headDim]),
      [VISION_INPUTS.sin]: new ort.Tensor('float32', rotary.sin, [patches, headDim]),
    };
    const { key, signal } = options;
    const resumed = key !== undefined && this.paused?.key === key ? this.paused : undefined;
    this.paused = undefined;
    const deepstack = resumed?.deepstack ?? new Map<number, Float32Array>();
    let hidden = resumed?.hidden;
    let embeds: Float32Array | undefined;
    for (let stage = resumed?.nextStage ?? 0; stage < this.stages.length; stage++) {
      if (stage > 0 && signal) {
        // onnxruntime-node runs on this thread: let a closed socket or a Stop be seen.
        await new Promise((resolve) => setImmediate(resolve));
        if (signal.aborted) {
          if (key !== undefined && hidden) {
            this.paused = { key, nextStage: stage, hidden, deepstack };
          }
          throw new EngineError('cancelled', 'the vision tower was stopped');
        }
      }
      const inputs: Record<string, ort.Tensor> = { ...tables };
      if (stage === 0) {
        const taps = positionTaps(gridThw, v.numPositionEmbeddings, merge);
        inputs[VISION_INPUTS.pixels] = new ort.Tensor('float32', pixelValues, [patches, patchIn]);
        inputs[VISION_INPUTS.posIndex] = new ort.Tensor('int64', taps.index, [4, patches]);
        inputs[VISION_INPUTS.posWeight] = new ort.Tensor('float32', taps.weight, [4, patches]);
      } else {
        inputs[VISION_INPUTS.hidden] = hidden as ort.Tensor;
      }
      const result = await this.stages[stage].run(inputs);
      for (const [name, tensor] of Object.entries(result)) {
        if (name === VISION_OUTPUTS.hidden) hidden = tensor;
        else if (name === VISION_OUTPUTS.embeds) embeds = copyOut(tensor);
        else deepstack.set(deepstackIndex(name), copyOut(tensor));
      }
    }
    return {
      tokens: patches / merge ** 2,
      imageEmbeds: embeds as Float32Array,
      deepstack: v.deepstackVisualIndexes.map((_, i) => deepstack.get(i) as Float32Array),
    };
  }
}

/**
 * A stage's session options. Each session keeps its own CPU arena, sized for its largest run,
 * which for a stage is about the whole tower's: with arenas, six stages of a 2B tower kept
 * 3.7 GB resident after a 1280x800 screenshot against 1.2 GB for one graph
 * (scripts/bench/vision-formats.ts --stages). Without, 1.0 GB; but each run takes fresh pages
 * for its activations, about 0.15 s a stage there (the elementwise ops that touch them first
 * take three times as long in a profile).
 */
export function stageSessionOptions(
  options: ort.InferenceSession.SessionOptions,
  stages: unknown[],
): ort.InferenceSession.SessionOptions {
  return stages.length > 1 ? { ...options, enableCpuMemArena: false } : options;
}

/** Copies an output out of onnxruntime's buffer and frees that. */
function copyOut(tensor: ort.Tensor): Float32Array {
  const data = (tensor.data as Float32Array).slice();
  tensor.dispose();
  return data;
}

function deepstackIndex(name: string): number {
  const index = Number(name.slice(VISION_OUTPUTS.deepstack(0).length - 1));
  if (!Number.isInteger(index)) throw new EngineError('internal', `unknown vision output ${name}`);
  return index;
}
