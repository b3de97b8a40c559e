"""What both benchmarks share: this CPU's fp32 peak, peak memory, timing statistics, synthetic photos."""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python benchmarks/x.py` from a checkout


# 32 dependent one-cycle integer adds per iteration: the loop runs at one add per clock cycle. Register-to-register
# adds: a chain of add-immediates (`add $1`) ran far faster than one per cycle on a recent Intel Xeon here
# (23 "GHz"), while register adds and a chain of `imul` (3-cycle latency) agreed on 4.0 GHz.
CLOCK_PROGRAM = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    unsigned long x = 0, step = 1, n = 20000000UL;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned long i = 0; i < n; i++) __asm__ volatile(".rept 32\n\tadd %1, %0\n\t.endr" : "+r"(x) : "r"(step));
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%f\n", 32.0 * n / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9) / 1e9);
    return x == 0;
}
"""


def running_clock_ghz() -> float | None:
    """The clock the cores run at under load (boost included), timed with a chain of dependent adds; the best
    of five runs, as another process taking the core can only make a run look slower. None without a C compiler."""
    import shutil

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source, program = Path(tmp) / "clock.c", Path(tmp) / "clock"
        source.write_text(CLOCK_PROGRAM)
        subprocess.run([compiler, "-O2", "-o", str(program), str(source)], check=True)
        return max(float(subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout)
                   for _ in range(5))


def cpu_peak() -> dict:
    """fp32 peak FLOP/s: cores × GHz × FLOPs per cycle per core, from `lscpu`.

    FLOPs per cycle from lscpu's flags: fp32 SIMD lanes (16 with avx512f, 8 with avx2) × 2 (a fused multiply-add,
    flag fma, is two FLOPs) × 2 FMA units per core (what current x86 server cores have; no flag shows it).
    GHz: lscpu's "CPU max MHz" where the machine shows it. A VM often does not, and BogoMIPS / 2 is only the base
    (TSC) clock, below the boost the cores run at; then the running clock is timed (`running_clock_ghz`).
    """
    info = dict(line.split(":", 1) for line in subprocess.run(["lscpu"], capture_output=True, text=True,
                                                              check=True).stdout.splitlines() if ":" in line)
    info = {key.strip(): value.strip() for key, value in info.items()}
    cores = int(info.get("Socket(s)", 1)) * int(info["Core(s) per socket"])
    flags = set(info.get("Flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    per_cycle = lanes * (2 if "fma" in flags else 1) * 2
    base_ghz = float(info["BogoMIPS"]) / 2000 if "BogoMIPS" in info else None
    if "CPU max MHz" in info:
        ghz, clock = float(info["CPU max MHz"]) / 1000, "lscpu CPU max MHz"
    elif (measured := running_clock_ghz()) is not None:
        ghz, clock = measured, f"timed running clock; lscpu shows only BogoMIPS / 2 = {base_ghz:.3f} GHz base"
    else:
        ghz, clock = base_ghz, "lscpu BogoMIPS / 2, the base clock: a lower bound"
    gflops = cores * ghz * per_cycle
    simd = {16: "AVX-512", 8: "AVX2", 4: "SSE"}[lanes]
    return {"model": info.get("Model name"), "cores": cores, "ghz": round(ghz, 3),
            "base_ghz": base_ghz and round(base_ghz, 3),
            "flops_per_cycle": per_cycle, "peak_gflops": round(gflops, 1),
            "derivation": f"{cores} cores x {ghz:.2f} GHz ({clock}) x {per_cycle} FLOPs/cycle ({lanes} fp32 lanes "
                          f"{simd} x {2 if 'fma' in flags else 1} (FMA) x 2 units, assumed) = {gflops:.0f} GFLOP/s"}


def peak_rss_mb() -> dict:
    """Peak resident memory of this process and of its largest finished child (DataLoader workers, trainers)."""
    return {"self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def percentiles_ms(seconds: list[float]) -> dict:
    ms = sorted(1000 * s for s in seconds)
    cuts = statistics.quantiles(ms, n=20, method="inclusive")  # 5 % steps
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(cuts[18], 2)}


def load_average() -> float:
    """1-minute load average: what else was running shows here."""
    return float(re.split(r"\s+", Path("/proc/loadavg").read_text())[0])


def write_photos(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """`count` synthetic side photos as JPEG files (phones, backs, look-alikes)."""
    import numpy as np

    from phonegrade.labels import labels_for_task
    from phonegrade.synth import render

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = labels_for_task("side")
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:04d}.jpg"
        render("side", labels[i % len(labels)], size, rng).save(path, quality=90)
        paths.append(path)
    return paths
