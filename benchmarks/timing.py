"""Timing shared by the benchmarks."""

import time


def timed(fn, min_seconds, warmup=1):
    """Seconds per call of `fn`: `warmup` calls, then repeats for at least `min_seconds` (and 2 calls)."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 2:
            return elapsed / n
