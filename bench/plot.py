"""Latency plot for bench/results.json: percentile curves per target, at low
load and at saturation (log-scaled latency), plus added p50/p99 bars."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
R = json.load(open(src))
targets = ["direct", "js-pass", "js-inject", "mcpgate"]
colors = {"direct": "#888888", "js-pass": "#1f77b4", "js-inject": "#ff7f0e", "mcpgate": "#2ca02c"}

fig, axes = plt.subplots(1, 3, figsize=(16, 5))
for ax, phase, title in [
    (axes[0], "low", "low load (1 connection)"),
    (axes[1], "sat", f"saturation ({R['settings']['satConns']} connections)"),
]:
    for t in targets:
        curve = R["latency"][phase][t]["curve_ms"]
        qs = sorted(curve, key=float)
        ax.plot([curve[q] for q in qs], [float(q) for q in qs], marker=".", label=t, color=colors[t])
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log)")
    ax.set_ylabel("percentile")
    ax.set_title(f"2 KB POST /v1/responses, {title}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()

ax = axes[2]
workers = ["js-pass", "js-inject", "mcpgate"]
x = range(len(workers))
low = R["latency"]["low"]
p50 = [low[t]["added_p50_ms"] for t in workers]
p99 = [low[t]["added_p99_ms"] for t in workers]
ax.bar([i - 0.2 for i in x], p50, width=0.4, label="added p50", color="#2ca02c")
ax.bar([i + 0.2 for i in x], p99, width=0.4, label="added p99", color="#98df8a")
ax.axhline(0.5, color="#2ca02c", ls="--", lw=1, label="goal p50 0.5 ms")
ax.axhline(2.0, color="#98df8a", ls="--", lw=1, label="goal p99 2 ms")
ax.set_xticks(list(x), workers)
ax.set_ylabel("ms over direct (low load)")
ax.set_title("added latency over direct, low load")
ax.legend()
m = R["machine"]
fig.suptitle(f"mcpgate bench, {m['date'][:10]}, {m['nproc']} x {m['cpu_model']}, {m['workerd']}")
fig.tight_layout()
fig.savefig(dst, dpi=110)
print(f"[bench] plot: {dst}")
