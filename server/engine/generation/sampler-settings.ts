/**
 * A request's sampling options resolved against the checkpoint's generation defaults, with
 * range checks that name the bad option.
 */
import type { SamplingOptions } from '../contracts';
import { EngineError } from '../errors';
import type { GenerationDefaults } from './generation-config';
import type { SamplerSettings } from './sampling';

export function resolveSampler(
  options: SamplingOptions | undefined,
  defaults: GenerationDefaults,
): SamplerSettings {
  const o = options ?? {};
  const temperature = check('temperature', o.temperature ?? defaults.temperature, (v) => v >= 0);
  const topK = check('topK', o.topK ?? defaults.topK, (v) => v >= 0 && Number.isInteger(v));
  const topP = check('topP', o.topP ?? defaults.topP, (v) => v > 0 && v <= 1);
  const repetitionPenalty = check(
    'repetitionPenalty',
    o.repetitionPenalty ?? defaults.repetitionPenalty,
    (v) => v > 0,
  );
  if (o.seed !== undefined) check('seed', o.seed, (v) => Number.isInteger(v));
  const greedy = o.greedy ?? (options?.temperature === undefined ? !defaults.doSample : false);
  return { greedy: greedy || temperature === 0, temperature, topK, topP, repetitionPenalty };
}

function check(name: string, value: number, valid: (v: number) => boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !valid(value)) {
    throw new EngineError(
      'bad_request',
      `sampling option ${name} = ${String(value)} is out of range`,
    );
  }
  return value;
}
