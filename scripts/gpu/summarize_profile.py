"""Summarizes an onnxruntime profile written by scripts/bench/profile-decode.ts: per decode step,
the wall time of a run, the host time of each operator (dispatch on WebGPU), and the GPU time of
each kernel (WebGPU 'Api' events), grouped by operator and by shader program.

    python3 summarize_profile.py PROFILE.json [STEPS]   (STEPS: the trailing runs to count, 16)
"""
import collections
import json
import sys


def table(title, totals, counts, steps, top=25):
    print(f"-- {title} (per step: us, calls)")
    for key, total in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{total / steps:10.1f} us {counts[key] / steps:6.1f}x  {key}")


def main(path, steps):
    events = json.load(open(path))
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    if len(runs) < steps:
        print(f"only {len(runs)} runs in {path}")
        return
    window = runs[-steps:]
    start = window[0]["ts"]
    wall = sum(r["dur"] for r in window) / steps
    host_t, host_n = collections.Counter(), collections.Counter()
    gpu_t, gpu_n = collections.Counter(), collections.Counter()
    prog_t, prog_n = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ts", 0) < start or "dur" not in e:
            continue
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", e["name"])
            provider = e.get("args", {}).get("provider", "").replace("ExecutionProvider", "")
            host_t[f"{op} [{provider}]"] += e["dur"]
            host_n[f"{op} [{provider}]"] += 1
        elif e.get("cat") == "Api":
            node, _, rest = e["name"].partition("&")
            op = node.split("_", 1)[-1] if "_" in node else node
            program = e["name"].rsplit("&", 1)[-1]
            gpu_t[op] += e["dur"]
            gpu_n[op] += 1
            prog_t[program] += e["dur"]
            prog_n[program] += 1
    gpu_total = sum(gpu_t.values()) / steps
    host_total = sum(host_t.values()) / steps
    print(f"steps {steps}: wall {wall:.0f} us per run; host time in operators {host_total:.0f} us; "
          f"GPU kernel time {gpu_total:.0f} us ({sum(gpu_n.values()) / steps:.0f} kernels)")
    table("GPU time by operator", gpu_t, gpu_n, steps)
    table("GPU time by shader program", prog_t, prog_n, steps)
    table("host time by operator", host_t, host_n, steps, top=15)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 16)
