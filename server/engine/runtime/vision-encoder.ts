/** Runs the vision graph for one image: host tables in, image embeddings + DeepStack out. */
import * as ort from 'onnxruntime-node';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { VisionEncoder, VisionOutput } from '../contracts';
import { EngineError } from '../errors';
import { VISION_INPUTS, VISION_OUTPUTS, framePatchValues } from '../onnx/vision-graph';
import { positionTaps, visionRotary } from './vision-tables';

export class OnnxVisionEncoder implements VisionEncoder {
  constructor(
    private readonly session: ort.InferenceSession,
    private readonly config: Qwen3VLConfig,
  ) {}

  async encode(
    pixelValues: Float32Array,
    gridThw: [number, number, number],
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
    const taps = positionTaps(gridThw, v.numPositionEmbeddings, merge);
    const headDim = v.hiddenSize / v.numHeads;
    const rotary = visionRotary(gridThw, headDim, v.ropeTheta, merge);
    const result = await this.session.run({
      [VISION_INPUTS.pixels]: new ort.Tensor('float32', pixelValues, [patches, patchIn]),
      [VISION_INPUTS.posIndex]: new ort.Tensor('int64', taps.index, [4, patches]),
      [VISION_INPUTS.posWeight]: new ort.Tensor('float32', taps.weight, [4, patches]),
      [VISION_INPUTS.cos]: new ort.Tensor('float32', rotary.cos, [patches, headDim]),
      [VISION_INPUTS.sin]: new ort.Tensor('float32', rotary.sin, [patches, headDim]),
    });
    const read = (name: string) => {
      const data = (result[name].data as Float32Array).slice();
      result[name].dispose();
      return data;
    };
    return {
      tokens: patches / merge ** 2,
      imageEmbeds: read(VISION_OUTPUTS.embeds),
      deepstack: v.deepstackVisualIndexes.map((_, i) => read(VISION_OUTPUTS.deepstack(i))),
    };
  }
}
