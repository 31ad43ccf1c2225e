/**
 * Runs the vision graph for one image: host tables in, image embeddings + DeepStack out. A tower
 * built in stages (vision-graph.ts, CPU builds) takes one run per stage; between two a stop
 * takes effect, and the image's progress is kept, so that the next request for the same image
 * goes on from there instead of starting over.
 */
import * as ort from 'onnxruntime-node';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { EncodeOptions, VisionEncoder, VisionOutput } from '../contracts';
import { EngineError } from '../errors';
import { cpuVisionStageCount } from '../onnx/build-graphs';
import {
  VISION_INPUTS,
  VISION_OUTPUTS,
  framePatchValues,
  visionStages,
} from '../onnx/vision-graph';
import { stopRequested } from './stop-point';
import { positionTaps, visionRotary } from './vision-tables';

/** An image's tower stopped between stages: where it goes on from. */
interface Paused {
  key: string;
  /** The grid it was resized to: the same image under other limits starts over. */
  grid: string;
  nextStage: number;
  hidden: ort.Tensor;
  deepstack: Map<number, Float32Array>;
}

export class OnnxVisionEncoder implements VisionEncoder {
  private readonly staged: boolean;
  /** Runs per image: the stages of a CPU build (build-graphs.ts), else one. */
  private readonly stageCount: number;
  /** One image's progress at most: the one stopped last. */
  private paused?: Paused;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly config: Qwen3VLConfig,
  ) {
    this.staged = session.inputNames.includes(VISION_INPUTS.stage);
    this.stageCount = this.staged
      ? visionStages(config.vision.depth, cpuVisionStageCount(config.vision.depth)).length
      : 1;
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
    const taps = positionTaps(gridThw, v.numPositionEmbeddings, merge);
    const image = {
      [VISION_INPUTS.pixels]: new ort.Tensor('float32', pixelValues, [patches, patchIn]),
      [VISION_INPUTS.posIndex]: new ort.Tensor('int64', taps.index, [4, patches]),
      [VISION_INPUTS.posWeight]: new ort.Tensor('float32', taps.weight, [4, patches]),
    };
    const { key, signal, onStage } = options;
    const grid = gridThw.join('x');
    const paused = this.paused;
    const resumed =
      key !== undefined && paused?.key === key && paused.grid === grid ? paused : undefined;
    this.paused = undefined;
    const deepstack = resumed?.deepstack ?? new Map<number, Float32Array>();
    let hidden = resumed?.hidden;
    for (let stage = resumed?.nextStage ?? 0; ; stage++) {
      if (stage > 0 && (await stopRequested(signal))) {
        if (key !== undefined && hidden) {
          this.paused = { key, grid, nextStage: stage, hidden, deepstack };
        }
        throw new EngineError('cancelled', 'the vision tower was stopped');
      }
      const feeds = this.staged
        ? {
            ...tables,
            ...(stage === 0 ? image : noImage(patchIn)),
            [VISION_INPUTS.hidden]:
              hidden ?? new ort.Tensor('float32', new Float32Array(0), [0, v.hiddenSize]),
            [VISION_INPUTS.stage]: new ort.Tensor('int64', BigInt64Array.of(BigInt(stage)), []),
          }
        : { ...tables, ...image };
      const result = await this.session.run(feeds);
      onStage?.(Math.min(stage + 1, this.stageCount), this.stageCount);
      // Outputs a stage does not make have no rows.
      const rows = (name: string) => result[name]?.dims[0] ?? 0;
      v.deepstackVisualIndexes.forEach((_, i) => {
        const name = VISION_OUTPUTS.deepstack(i);
        if (rows(name) > 0) deepstack.set(i, copyOut(result[name]));
        else result[name].dispose();
      });
      if (rows(VISION_OUTPUTS.embeds) > 0) {
        result[VISION_OUTPUTS.hidden]?.dispose();
        return {
          tokens: patches / merge ** 2,
          imageEmbeds: copyOut(result[VISION_OUTPUTS.embeds]),
          deepstack: v.deepstackVisualIndexes.map((_, i) => deepstack.get(i) as Float32Array),
        };
      }
      result[VISION_OUTPUTS.embeds].dispose();
      hidden = result[VISION_OUTPUTS.hidden];
      if (!hidden || rows(VISION_OUTPUTS.hidden) === 0) {
        throw new EngineError(
          'internal',
          `vision stage ${stage} returned neither features nor hidden states`,
        );
      }
    }
  }
}

/** A later stage's image inputs: no rows. */
function noImage(patchIn: number): Record<string, ort.Tensor> {
  return {
    [VISION_INPUTS.pixels]: new ort.Tensor('float32', new Float32Array(0), [0, patchIn]),
    [VISION_INPUTS.posIndex]: new ort.Tensor('int64', new BigInt64Array(0), [4, 0]),
    [VISION_INPUTS.posWeight]: new ort.Tensor('float32', new Float32Array(0), [4, 0]),
  };
}

/** Copies an output out of onnxruntime's buffer and frees that. */
function copyOut(tensor: ort.Tensor): Float32Array {
  const data = (tensor.data as Float32Array).slice();
  tensor.dispose();
  return data;
}
