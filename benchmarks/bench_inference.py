"""Inference speed of the separation network and of ``audiosep.separate``.

Prints seconds of compute per second of audio (lower is better) for:

1. the network's single pass over 10 s and 60 s of audio (fused fast path);
2. the plain module-by-module forward (the reference's structure) vs ours, same run;
3. chunked vs single pass over 60 s through ``audiosep.separate``;
4. four queries in one ``separate`` call vs four calls;
5. peak memory (ru_maxrss on CPU, so cumulative over the run; max allocated on CUDA).

Usage::

    python benchmarks/bench_inference.py            # CPU, 2 threads, ~3-5 minutes
    python benchmarks/bench_inference.py --quick    # smoke run, short signals
    python benchmarks/bench_inference.py --device cuda --dtype bf16
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from typing import Callable

import torch

from audiosep.nn import ResUNet, ResUNetConfig
from audiosep.nn.fused import keep_freed_memory


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--checkpoint", default=None, help="separation-net checkpoint (default: random)")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats of short runs (min is kept)")
    p.add_argument("--quick", action="store_true", help="short signals, one repeat: a smoke test")
    p.add_argument("--skip-baseline", action="store_true", help="do not time the plain forward")
    p.add_argument(
        "--keep-heap", action="store_true",
        help="keep freed memory in the glibc heap (audiosep.nn.fused.keep_freed_memory)",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_net(args) -> ResUNet:
    if args.checkpoint:
        from audiosep import load_separation_net

        return load_separation_net(args.checkpoint).eval()
    gen = torch.Generator().manual_seed(args.seed)
    net = ResUNet(ResUNetConfig())
    with torch.no_grad():  # random weights are fine for timing; seeded, no global RNG
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (p[0].numel() ** -0.5 if p.dim() > 1 else 0.02))
    return net.eval()


class Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def __call__(self, fn: Callable[[], object], repeats: int, warmup: bool = True) -> tuple[float, float]:
        """(wall, process CPU) seconds of the fastest of ``repeats`` runs of ``fn``.

        CPU time (all threads) is reported too because wall time on a shared machine is
        inflated by other processes; on an idle machine wall ~= CPU / threads.
        """
        if warmup:
            fn()
        best = (float("inf"), float("inf"))
        for _ in range(max(1, repeats)):
            self.sync()
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            self.sync()
            best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
        return best


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if args.keep_heap:
        keep_freed_memory()
    bf16 = args.dtype == "bf16"
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    )
    net = build_net(args).to(device)
    sr = net.config.sample_rate
    gen = torch.Generator().manual_seed(args.seed + 1)
    short_s, long_s = (2.0, 6.0) if args.quick else (10.0, 60.0)
    repeats = 1 if args.quick else args.repeats
    timer = Timer(device)
    rows: list[tuple[str, float, tuple[float, float], str]] = []  # name, audio s, (wall, cpu) s, MB

    def audio(seconds: float, batch: int = 1) -> torch.Tensor:
        return (torch.randn(batch, 1, int(seconds * sr), generator=gen) * 0.1).to(device)

    cond = torch.nn.functional.normalize(torch.randn(4, net.config.condition_dim, generator=gen), dim=-1)
    cond = cond.to(device)

    def net_pass(x: torch.Tensor, fused: bool) -> Callable[[], object]:
        def fn():
            net.set_fused(fused)
            with torch.inference_mode(), autocast():
                return net(x, cond[: x.shape[0]])

        return fn

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    results: dict[str, float] = {}  # wall seconds
    # (1) + (2): the network alone
    for seconds in (short_s, long_s):
        x = audio(seconds)
        reps = repeats if seconds == short_s else 1
        paths = [("fused", True)] + ([] if args.skip_baseline else [("plain", False)])
        for label, fused in paths:
            t = timer(net_pass(x, fused), reps, warmup=seconds == short_s)
            results[f"{label}@{seconds:g}"] = t[0]
            rows.append((f"net {label} single pass", seconds, t, f"{peak_memory_mb(device):.0f}"))
    net.set_fused(True)

    # (3) + (4): the public API
    from audiosep import AudioSep, separate

    model = AudioSep(net, _embeddings_only_encoder(net.config.condition_dim)).eval()
    wav = audio(long_s)[0].cpu()  # [1, L]
    kw = dict(sample_rate=sr, model=model, bf16=bf16)
    outputs = {}
    for label, chunk in (("chunked (default)", "default"), ("single pass", None)):
        extra = {} if chunk == "default" else dict(chunk_seconds=chunk)

        def run(label=label, extra=extra):
            outputs[label] = separate(wav, cond[:1], **kw, **extra).audio

        t = timer(run, 1, warmup=False)
        results[f"separate {label}"] = t[0]
        rows.append((f"separate() {label}", long_s, t, f"{peak_memory_mb(device):.0f}"))
    ref, est = outputs["single pass"].double(), outputs["chunked (default)"].double()
    results["chunked snr"] = float(10 * torch.log10(ref.pow(2).mean() / (ref - est).pow(2).mean()))
    wav = audio(short_s)[0].cpu()
    t = timer(lambda: separate(wav, cond, **kw, chunk_seconds=None), 1, warmup=False)
    results["4 queries, one call"] = t[0]
    rows.append(("separate() 4 queries, one call", 4 * short_s, t, f"{peak_memory_mb(device):.0f}"))
    t = timer(lambda: separate(wav, cond, **kw, chunk_seconds=None, batch_size=4), 1, warmup=False)
    results["4 queries, one call, batch 4"] = t[0]
    rows.append(("separate() 4 queries, 1 call, batch 4", 4 * short_s, t, f"{peak_memory_mb(device):.0f}"))
    t = timer(
        lambda: [separate(wav, cond[i : i + 1], **kw, chunk_seconds=None) for i in range(4)], 1,
        warmup=False,
    )
    results["4 queries, 4 calls"] = t[0]
    rows.append(("separate() 4 queries, 4 calls", 4 * short_s, t, f"{peak_memory_mb(device):.0f}"))

    # report
    print(
        f"\ndevice={device} dtype={args.dtype} threads={torch.get_num_threads()} "
        f"torch={torch.__version__} keep_heap={args.keep_heap} "
        f"weights={'checkpoint' if args.checkpoint else 'random'}"
    )
    print(f"{'case':<36}{'audio s':>9}{'wall s':>9}{'s per s':>9}{'cpu s':>9}{'peak MB':>10}")
    for name, seconds, (wall, cpu), mem in rows:
        print(f"{name:<36}{seconds:>9.1f}{wall:>9.2f}{wall / seconds:>9.3f}{cpu:>9.2f}{mem:>10}")
    print()
    for seconds in (short_s, long_s):
        if f"plain@{seconds:g}" in results:
            ratio = results[f"plain@{seconds:g}"] / results[f"fused@{seconds:g}"]
            print(f"plain (reference-style) forward / ours at {seconds:g} s: {ratio:.2f}x")
    ratio = results["separate chunked (default)"] / results["separate single pass"]
    print(f"chunked / single pass over {long_s:g} s: {ratio:.2f}x; "
          f"chunked output vs single-pass output: {results['chunked snr']:.1f} dB SNR")
    ratio = results["4 queries, 4 calls"] / results["4 queries, one call"]
    print(f"4 calls / one 4-query call over {short_s:g} s: {ratio:.2f}x (default batch size for {device})")
    ratio = results["4 queries, 4 calls"] / results["4 queries, one call, batch 4"]
    print(f"4 calls / one 4-query call as one batch of 4 over {short_s:g} s: {ratio:.2f}x")
    return 0


def _embeddings_only_encoder(dim: int):
    """Stand-in query encoder: the benchmark passes precomputed embeddings only."""
    from audiosep.query import QueryEncoder

    class EmbeddingsOnly(QueryEncoder):
        kind = "benchmark-embeddings-only"

        def __init__(self) -> None:
            super().__init__()
            self.embedding_dim = dim

        def _build(self) -> None:
            pass

        def _embed_text(self, texts):
            raise RuntimeError("the inference benchmark passes query embeddings, not text")

    return EmbeddingsOnly()


if __name__ == "__main__":
    raise SystemExit(main())
