/**
 * What an image becomes in the prompt (its patch grid and pad-token count), remembered by
 * content hash. A refinement sends the same screenshot again; its prompt can be laid out from
 * this without decoding and resizing the pixels (50-200 ms for a screenshot), which are only
 * needed when the vision tower has to run.
 */
export interface ImageLayout {
  /** [grid_t, grid_h, grid_w] in patches. */
  gridThw: [number, number, number];
  /** Number of `<|image_pad|>` tokens the image becomes. */
  tokens: number;
}

export class ImageLayouts {
  private readonly entries = new Map<string, ImageLayout>();

  /** A few hundred bytes an entry: the bound is about churn, not memory. */
  constructor(private readonly maxEntries = 256) {}

  get(key: string): ImageLayout | undefined {
    return this.entries.get(key);
  }

  set(key: string, layout: ImageLayout): void {
    this.entries.delete(key);
    this.entries.set(key, layout);
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
  }
}
