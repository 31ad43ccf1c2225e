"""Prints scripts/gpu/run.sh's JSON lines as one table (engine, precision, shape, figures)."""
import json
import sys

COLUMNS = [
    ("engine", "engine"), ("mode", "mode"), ("graph_capture", "capture"), ("graph_capture_verify_rows", "verify rows"), ("draft_planner", "planner"),
    ("precision", "prec"), ("image", "image"),
    ("prompt_tokens", "prompt"), ("preprocess_ms", "pre ms"), ("vision_ms", "vision ms"),
    ("prefill_ms", "prefill ms"), ("ttft_ms", "TTFT ms"), ("first_token_after_preprocess_ms", "TTFT-pre ms"),
    ("first_token_with_preprocess_ms", "TTFT+pre ms"), ("generate_read_ahead_ttft_ms", "read-ahead TTFT"),
    ("stop_wait_mean_ms", "stop wait ms"), ("decode_tok_s", "tok/s"),
    ("decode_best_step_tok_s", "best step tok/s"), ("decode_spec_tok_s", "spec first tok/s"), ("kernel_tok_s", "int4 kernel tok/s"), ("refine_ttft_ms", "refine TTFT"),
    ("refine_cold_ttft_ms", "cold refine"), ("refine_read_ahead_ttft_ms", "read-ahead refine"), ("refine_plain_tok_s", "refine tok/s"),
    ("refine_spec_tok_s", "spec tok/s"), ("lookup_decode_tok_s", "lookup tok/s"),
    ("spec_accepted_per_run", "acc/run"), ("peak_gpu_mb", "peak MB"), ("error", "error"),
]


def cell(value):
    return "" if value is None else str(value)


def with_preprocessing(row):
    """The first token with and without preprocessing, whichever way each engine reports it:
    the engine's ttft_ms includes its preprocessing, the transformers baseline's does not (its
    processor's time is preprocess_ms, measured apart)."""
    ttft, pre = row.get("ttft_ms"), row.get("preprocess_ms")
    if ttft is None or pre is None:
        return
    if row.get("engine") == "transformers":
        row["first_token_after_preprocess_ms"] = ttft
        row["first_token_with_preprocess_ms"] = round(ttft + pre, 1)
    else:
        row["first_token_after_preprocess_ms"] = round(ttft - pre, 1)
        row["first_token_with_preprocess_ms"] = ttft


def print_kernel_rows(lines):
    """int4-kernel-rows.ts: a pass's ms per run rows, one line per runtime and format."""
    passes = {}
    for r in lines:
        key = (r["runtime"], r["block_size"], "zp" if r["zero_points"] else "sym", r["accuracy_level"])
        passes.setdefault(key, []).append(r)
    print("int4 matrix multiplies of a step, ms by run rows (x one row's ms):")
    for (runtime, block, zero, level), found in passes.items():
        ratio = next(k for k in found[0] if k.startswith("vs_"))
        cells = [f"{r['rows']}: {r['median_ms']} ({r[ratio]}x)" for r in found]
        print(f"  {runtime} {block}:{zero}:{level}  " + ", ".join(cells))


def main(path):
    rows, kernel_rows = [], []
    for line in open(path):
        line = line.strip()
        record = json.loads(line) if line else {}
        if "engine" in record:  # profile lines print on their own
            rows.append(record)
        elif record.get("bench") == "int4_kernel_rows":
            kernel_rows.append(record)
    if kernel_rows:
        print_kernel_rows(kernel_rows)
    for r in rows:
        with_preprocessing(r)
    if not rows:
        print("no results")
        return
    cols = [(k, h) for k, h in COLUMNS if any(k in r for r in rows)]
    table = [[h for _, h in cols]] + [[cell(r.get(k)) for k, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main(sys.argv[1])
