"""``qbench bench score``: the scoring engine against a plain per-image pyiqa loop.

The same images (``refs`` photographs under one corruption, so FR metrics have references) are
scored with the offline pyiqa metrics twice in one invocation: by ``qbench.engine.score``
(batched, into a temporary store, including its bookkeeping) and by a loop that calls each
pyiqa metric on one image at a time, as a typical evaluation script does. Each side runs in its
own subprocess so that its peak resident memory can be read; the two sides alternate and each
is timed ``repeats`` times (the fastest run counts). MAD is left out by default: at ~3 s per
image in both paths it would only dilute the comparison.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap

from qbench.metrics.pyiqa_adapter import WEIGHT_FREE

DEFAULT_METRICS = tuple(sorted(WEIGHT_FREE - {"mad"}))

_SIDE = textwrap.dedent("""
    import json, resource, sys, tempfile, time, warnings
    warnings.simplefilter("ignore")
    import torch
    import qbench.corrupt as corrupt
    import qbench.data as data
    side, n, size, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
    device = sys.argv[5]
    refs = data.load("refs", size=size)
    clean = refs.batch([i % len(refs) for i in range(n)])
    dist = corrupt.apply(clean, "gaussian_blur", 3)
    clean, dist = clean.to(device), dist.to(device)
    if side == "qbench":
        from qbench.engine import Condition, score
        from qbench.metrics import create
        from qbench.store import Store
        ds = refs.subset([i % len(refs) for i in range(n)])
        ds.item_ids = [f"img{i}" for i in range(n)]
        metrics = [create(f"pyiqa:{m}", device=device) for m in names]
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            store = Store(d)
            run = store.begin_run({"bench": "score"})
            score(store, run, ds, [Condition("gaussian_blur", 3)], metrics, batch_size=16,
                  progress=False)
            rows = len(store.rows(run))
    else:
        import pyiqa
        metrics = [pyiqa.create_metric(m, device=device) for m in names]
        start = time.perf_counter()
        rows = 0
        with torch.no_grad():
            for i in range(n):
                for m in metrics:
                    if m.metric_mode == "FR":
                        m(dist[i : i + 1], clean[i : i + 1])
                    else:
                        m(dist[i : i + 1])
                    rows += 1
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"side": side, "seconds": seconds, "rows": rows, "peak_rss_mb": peak_mb}))
""")


def _side(side: str, n: int, size: int, names: tuple[str, ...], device: str = "cpu") -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_SIDE)
    out = subprocess.run([sys.executable, f.name, side, str(n), str(size), ",".join(names),
                          device],
                         capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(n: int = 64, size: int = 192, names: tuple[str, ...] = DEFAULT_METRICS,
        repeats: int = 2, progress: bool = True, device: str = "cpu") -> dict:
    """Alternate the two sides ``repeats`` times; report the fastest of each and the ratio.

    ``device``: where both sides' metrics and images live (the same for both)."""
    results: dict[str, list[dict]] = {"qbench": [], "pyiqa_loop": []}
    for r in range(repeats):
        for side in ("qbench", "pyiqa_loop"):
            res = _side(side, n, size, names, device)
            results[side].append(res)
            if progress:
                print(f"  run {r + 1}: {side:10s} {res['seconds']:7.2f} s  "
                      f"{res['rows']} scores  peak RSS {res['peak_rss_mb']:.0f} MB", flush=True)
    best = {s: min(v, key=lambda x: x["seconds"]) for s, v in results.items()}
    return {"n_images": n, "size": size, "metrics": list(names), "repeats": repeats,
            "device": device,
            "qbench_s": round(best["qbench"]["seconds"], 3),
            "pyiqa_loop_s": round(best["pyiqa_loop"]["seconds"], 3),
            "speedup": round(best["pyiqa_loop"]["seconds"] / best["qbench"]["seconds"], 3),
            "peak_rss_mb": {s: round(max(x["peak_rss_mb"] for x in v), 1)
                            for s, v in results.items()},
            "rows": {s: best[s]["rows"] for s in best}}
