"""The peer a tuned PyTorch user gets: Hugging Face transformers running a Qwen3-VL-2B-sized
model (the published config, random bf16 weights, sdpa attention) on one GPU, batch 1.

For each screenshot size it prints one JSON line per mode:
  eager        plain generate (dynamic cache)
  static       generate with a static KV cache, which transformers compiles (warm repetition)
  lookup       plain generate with prompt-lookup decoding on a refinement (previous answer in
               the prompt), the transformers counterpart of this engine's speculation
with preprocessing, time to first token (prefill + first token), decode tokens/s and peak GPU
memory. Run by scripts/gpu/run.sh; needs torch, transformers (Qwen3-VL support) and Pillow.
"""
import argparse
import json
import time

import torch
from PIL import Image, ImageDraw


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layout", required=True, help="qwen3vl_2b_layout.json (its config is used)")
    ap.add_argument("--processor", required=True, help="a directory with Qwen's processor files")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--images", nargs="+", default=["1280x800", "1920x1080"])
    ap.add_argument("--results", help="append JSON lines here")
    ap.add_argument("--skip-static", action="store_true")
    return ap.parse_args()


def screenshot(width, height):
    """A page with a header bar, a sidebar and cards, like the Node benchmark's."""
    im = Image.new("RGB", (width, height), (250, 251, 252))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, width, int(height * 0.08)], fill=(31, 111, 235))
    d.rectangle([0, int(height * 0.08), int(width * 0.18), height], fill=(240, 243, 246))
    for i in range(6):
        x = int(width * (0.22 + (i % 3) * 0.26))
        y = int(height * (0.15 + (i // 3) * 0.4))
        d.rounded_rectangle([x, y, x + int(width * 0.23), y + int(height * 0.33)], 8,
                            fill=(255, 255, 255), outline=(208, 215, 222))
        d.text((x + 12, y + 16), f"Card {i + 1}", fill=(36, 41, 47))
    return im


def build_model(layout_path):
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    config = Qwen3VLConfig.from_dict(json.load(open(layout_path))["config"])
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            model = Qwen3VLForConditionalGeneration._from_config(
                config, dtype=torch.bfloat16, attn_implementation="sdpa")
        except TypeError:  # older transformers
            model = Qwen3VLForConditionalGeneration._from_config(
                config, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    return model.eval()


def timed_generate(model, inputs, tokens, **kw):
    """(time to first token, decode tokens/s, generated ids) from a 1-token and an N-token run."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=1, min_new_tokens=1, do_sample=False, **kw)
    torch.cuda.synchronize()
    ttft = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens,
                             do_sample=False, **kw)
    torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return ttft, (tokens - 1) / max(1e-9, total - ttft), out


def main():
    args = parse_args()
    from transformers import AutoProcessor
    import transformers

    processor = AutoProcessor.from_pretrained(args.processor)
    t0 = time.perf_counter()
    model = build_model(args.layout)
    print(json.dumps({"engine": "transformers", "version": transformers.__version__,
                      "torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
                      "params": sum(p.numel() for p in model.parameters()),
                      "init_s": round(time.perf_counter() - t0, 1)}), flush=True)
    results = open(args.results, "a") if args.results else None
    instruction = "Generate a single HTML file with inline CSS that reproduces this UI."

    def report(entry):
        entry["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        line = json.dumps(entry)
        print(line, flush=True)
        if results:
            results.write(line + "\n")
            results.flush()

    for size in args.images:
        width, height = (int(v) for v in size.split("x"))
        image = screenshot(width, height)
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": instruction}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        t0 = time.perf_counter()
        inputs = processor(text=[text], images=[image], return_tensors="pt")
        preprocess_ms = (time.perf_counter() - t0) * 1000
        inputs = inputs.to("cuda")
        prompt_tokens = int(inputs["input_ids"].shape[1])
        base = {"engine": "transformers", "image": size, "prompt_tokens": prompt_tokens,
                "preprocess_ms": round(preprocess_ms, 1)}

        torch.cuda.reset_peak_memory_stats()
        for rep in range(2):  # the first repetition warms up kernels and allocator
            ttft, tok_s, out = timed_generate(model, inputs, args.tokens)
        report({**base, "mode": "eager", "ttft_ms": round(ttft * 1000, 1),
                "decode_tok_s": round(tok_s, 1)})

        if not args.skip_static:
            torch.cuda.reset_peak_memory_stats()
            for rep in range(2):  # the first repetition compiles; the second is the figure
                ttft, tok_s, _ = timed_generate(model, inputs, args.tokens,
                                                cache_implementation="static")
            report({**base, "mode": "static", "ttft_ms": round(ttft * 1000, 1),
                    "decode_tok_s": round(tok_s, 1)})

        # A refinement: the previous answer in the prompt, then prompt-lookup decoding.
        answer = processor.batch_decode(out[:, prompt_tokens:], skip_special_tokens=True)[0]
        refine = messages + [
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            {"role": "user", "content": [{"type": "text", "text":
                "Make the header blue and keep everything else as it is."}]},
        ]
        text = processor.apply_chat_template(refine, tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=[image], return_tensors="pt").to("cuda")
        torch.cuda.reset_peak_memory_stats()
        for rep in range(2):
            ttft, tok_s, _ = timed_generate(model, inputs, args.tokens)
            ttft_l, tok_s_l, _ = timed_generate(model, inputs, args.tokens,
                                                prompt_lookup_num_tokens=10)
        report({**base, "mode": "refinement", "prompt_tokens": int(inputs["input_ids"].shape[1]),
                "ttft_ms": round(ttft * 1000, 1), "decode_tok_s": round(tok_s, 1),
                "lookup_decode_tok_s": round(tok_s_l, 1)})


if __name__ == "__main__":
    main()
