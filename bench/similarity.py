"""Benchmark: token-wise similarity of N texts x M videos, chunked (this package) vs the authors' full tensor.

Each variant runs in a fresh process so that its peak resident memory can be read from the OS. Figures go to
stdout and, with --write, to BENCHMARKS.md (section "similarity").

    python bench/similarity.py --write
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402


def make_inputs(args):
    g = torch.Generator().manual_seed(0)
    text = torch.randn(args.texts, args.tokens, args.dim, generator=g)
    video = torch.randn(args.videos, args.frames, args.dim, generator=g)
    text_mask = (torch.arange(args.tokens) < torch.randint(4, args.tokens + 1, (args.texts, 1), generator=g)).float()
    video_mask = (torch.arange(args.frames) < torch.randint(1, args.frames + 1, (args.videos, 1), generator=g)).float()
    text_w = torch.softmax(torch.randn(args.texts, args.tokens, generator=g).masked_fill(text_mask == 0, -1e9), -1)
    video_w = torch.softmax(torch.randn(args.videos, args.frames, generator=g).masked_fill(video_mask == 0, -1e9), -1)
    return text, text_mask, video, video_mask, text_w, video_w


def authors_formulation(text, text_mask, video, video_mask, text_w, video_w):
    """The authors' WTI scoring: the whole [texts, videos, tokens, frames] tensor, masks multiplied in."""
    text = text / text.norm(dim=-1, keepdim=True)
    video = video / video.norm(dim=-1, keepdim=True)
    logits = torch.einsum("atd,bvd->abtv", [text, video])
    logits = torch.einsum("abtv,at->abtv", [logits, text_mask])
    logits = torch.einsum("abtv,bv->abtv", [logits, video_mask])
    t2v = torch.einsum("abt,at->ab", [logits.max(dim=-1)[0], text_w])
    v2t = torch.einsum("abv,bv->ab", [logits.max(dim=-2)[0], video_w])
    return (t2v + v2t) / 2


def package_formulation(text, text_mask, video, video_mask, text_w, video_w, chunk_bytes):
    from modeling_tvr.interaction_drl import prepare_tokens, token_wise_similarity

    return token_wise_similarity(
        prepare_tokens(text, text_mask), text_w, prepare_tokens(video, video_mask), video_w, chunk_bytes=chunk_bytes
    )


def matmul_bound(text, text_mask, video, video_mask, text_w, video_w):
    """The one matrix product every token-wise method must do: [texts*tokens, D] x [D, videos*frames]."""
    return text.flatten(0, 1) @ video.flatten(0, 1).T


def run_variant(args) -> dict:
    torch.set_num_threads(args.threads)
    inputs = make_inputs(args)
    functions = {
        "authors": authors_formulation,
        "package": lambda *x: package_formulation(*x, chunk_bytes=args.chunk_mb * 1024**2),
        "matmul": matmul_bound,
    }
    function = functions[args.variant]
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        function(*inputs)  # warm-up, and the peak memory
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = function(*inputs)
            times.append(time.perf_counter() - start)
    checksum = float(result.double().sum()) if args.variant != "matmul" else None
    return {"seconds": min(times), "peak_extra_mb": (peak_kb - baseline_kb) / 1024, "checksum": checksum}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--chunk-mb", type=int, default=256, help="the package's chunk budget")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--variant", choices=["authors", "package", "matmul"], help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return

    passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("variant", "write")]
    results = {}
    for variant in ("matmul", "package", "authors"):
        out = subprocess.run(
            [sys.executable, __file__, f"--variant={variant}", *passthrough], capture_output=True, text=True, check=True
        )
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(variant, results[variant], flush=True)
    same = abs(results["package"]["checksum"] - results["authors"]["checksum"]) <= 1e-6 * args.texts * args.videos
    flops = 2 * args.texts * args.tokens * args.videos * args.frames * args.dim
    rows = [
        "| formulation | time (s) | GFLOP/s of the matmul | peak extra memory (MiB) |",
        "| --- | --- | --- | --- |",
    ]
    names = {
        "matmul": "matrix-multiply bound (one `[N*T, D] x [D, M*F]` product)",
        "package": f"this package, chunked ({args.chunk_mb} MiB budget)",
        "authors": "authors' full `[N, M, T, F]` tensor",
    }
    for variant in ("matmul", "package", "authors"):
        r = results[variant]
        rows.append(
            f"| {names[variant]} | {r['seconds']:.3f} | {flops / r['seconds'] / 1e9:.1f} | {r['peak_extra_mb']:.0f} |"
        )
    speedup = results["authors"]["seconds"] / results["package"]["seconds"]
    bound_ratio = results["package"]["seconds"] / results["matmul"]["seconds"]
    text = "\n".join(
        [
            f"{args.texts} texts x {args.videos} videos, {args.tokens} tokens, {args.frames} frames, dim {args.dim}, "
            f"float32, {args.threads} threads, best of {args.repeat}; {platform.processor() or platform.machine()}, "
            f"torch {torch.__version__}, {date.today().isoformat()}. Command: `python bench/similarity.py --write`.",
            "",
            *rows,
            "",
            f"Package vs authors: {speedup:.2f}x faster; package vs matmul bound: {bound_ratio:.2f}x the bound's time. "
            f"Same scores: {'yes' if same else 'NO'} (checksums {results['package']['checksum']:.6f} / "
            f"{results['authors']['checksum']:.6f}).",
        ]
    )
    print(text)
    if args.write:
        write_section("similarity", "Similarity: N texts x M videos (WTI scoring)", text)


if __name__ == "__main__":
    main()
