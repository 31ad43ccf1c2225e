/**
 * Vision-tower outputs kept by image content hash, least recently used first out, bounded in
 * bytes: the same screenshot sent again (a retry, an edited earlier turn) skips the vision
 * tower.
 */
import { createHash } from 'node:crypto';
import type { VisionOutput } from '../contracts';

export function imageKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class ImageEmbeddingCache {
  private readonly entries = new Map<string, VisionOutput>();
  private bytes = 0;

  constructor(private readonly maxBytes = 512 * 1024 * 1024) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): VisionOutput | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit); // most recent last
    }
    return hit;
  }

  set(key: string, value: VisionOutput): void {
    const size = sizeOf(value);
    if (size > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= sizeOf(old);
      this.entries.delete(key);
    }
    this.entries.set(key, value);
    this.bytes += size;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= sizeOf(entry);
    }
  }
}

function sizeOf(value: VisionOutput): number {
  return value.imageEmbeds.byteLength + value.deepstack.reduce((n, d) => n + d.byteLength, 0);
}
