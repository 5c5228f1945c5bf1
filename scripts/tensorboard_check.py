"""Does TensorBoard read bnlab's event files? A check run by hand; needs `pip install tensorboard`.

usage: cargo run --release --example tensorboard_demo DIR && python3 scripts/tensorboard_check.py DIR
Loads DIR with TensorBoard's own EventAccumulator (which checks every record's CRCs), prints the
tags, every scalar and every histogram's (min, max, num, sum) it read, and, when DIR holds the
demo's written.json, compares them with what was written: scalars exactly (both are the f32
stored), histogram statistics within 1e-9 relative. Exits 1 on any difference.
"""
import json, math, os, sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

d = sys.argv[1]
acc = EventAccumulator(d, size_guidance={"histograms": 0, "scalars": 0})
acc.Reload()
tags = acc.Tags()
print("scalars:", tags["scalars"])
print("histograms:", tags["histograms"])
read_scalars = {}
for tag in tags["scalars"]:
    for e in acc.Scalars(tag):
        print(f"  scalar {tag} step {e.step}: {e.value!r}")
        read_scalars[(tag, e.step)] = e.value
read_histos = {}
for tag in tags["histograms"]:
    for e in acc.Histograms(tag):
        h = e.histogram_value
        print(f"  histogram {tag} step {e.step}: min {h.min!r} max {h.max!r} num {h.num!r} "
              f"sum {h.sum!r} buckets {len(h.bucket)}")
        read_histos[(tag, e.step)] = h

written_path = os.path.join(d, "written.json")
if not os.path.exists(written_path):
    sys.exit(0)
with open(written_path) as f:
    written = json.load(f)
bad = []
for s in written["scalars"]:
    got = read_scalars.get((s["tag"], s["step"]))
    if got != s["value"]:
        bad.append(f"scalar {s['tag']} step {s['step']}: wrote {s['value']!r}, read {got!r}")
for h in written["histograms"]:
    got = read_histos.get((h["tag"], h["step"]))
    if got is None:
        bad.append(f"histogram {h['tag']} step {h['step']}: not read")
        continue
    for k in ("min", "max", "num", "sum"):
        if not math.isclose(getattr(got, k), h[k], rel_tol=1e-9, abs_tol=1e-12):
            bad.append(f"histogram {h['tag']} step {h['step']} {k}: wrote {h[k]!r}, "
                       f"read {getattr(got, k)!r}")
n = len(written["scalars"]) + len(written["histograms"])
print(f"{n - len(bad)} of {n} written values read back as written")
for b in bad:
    print("  DIFFERENT:", b)
sys.exit(1 if bad else 0)
