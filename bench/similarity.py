"""Benchmark: token-wise similarity of N texts x M videos, chunked (this package) vs the authors' full tensor.

Each variant runs in a fresh process so that its peak resident memory can be read from the OS. Figures go to
stdout and, with --write, to BENCHMARKS.md (section "similarity").

    python -m bench.similarity --write
"""

import argparse
import json
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import torch

from bench.report import write_section
from bench.timing import best_of, peak_rss_kib, timed

ROOT = Path(__file__).resolve().parents[1]


def make_inputs(args):
    """Random features; caption and video lengths uniform in [4, tokens] and [1, frames], or all full (`--full`)."""
    g = torch.Generator().manual_seed(0)
    text = torch.randn(args.texts, args.tokens, args.dim, generator=g)
    video = torch.randn(args.videos, args.frames, args.dim, generator=g)
    text_lengths = torch.randint(4, args.tokens + 1, (args.texts, 1), generator=g)
    video_lengths = torch.randint(1, args.frames + 1, (args.videos, 1), generator=g)
    if getattr(args, "full", False):
        text_lengths, video_lengths = (
            torch.full_like(text_lengths, args.tokens),
            torch.full_like(video_lengths, args.frames),
        )
    text_mask = (torch.arange(args.tokens) < text_lengths).float()
    video_mask = (torch.arange(args.frames) < video_lengths).float()
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


def matmul_all_positions(text, text_mask, video, video_mask, text_w, video_w):
    """The product the authors compute: every position, padding included: [texts*tokens, D] x [D, videos*frames]."""
    return text.flatten(0, 1) @ video.flatten(0, 1).T


def matmul_valid_positions(text, text_mask, video, video_mask, text_w, video_w):
    """The product any exact method must compute: valid tokens x valid frames, the lower bound."""
    return text[text_mask > 0] @ video[video_mask > 0].T


def run_variant(args) -> dict:
    torch.set_num_threads(args.threads)
    inputs = make_inputs(args)
    functions = {
        "authors": authors_formulation,
        "package": lambda *x: package_formulation(*x, chunk_bytes=args.chunk_mb * 1024**2),
        "matmul": matmul_all_positions,
        "matmul_valid": matmul_valid_positions,
    }
    function = functions[args.variant]
    baseline_kb = peak_rss_kib()
    with torch.no_grad():
        function(*inputs)  # warm-up, and the peak memory
        peak_kb = peak_rss_kib()
        seconds, result = best_of(lambda: function(*inputs), args.repeat)
    checksum = float(result.double().sum()) if not args.variant.startswith("matmul") else None
    text_mask, video_mask = inputs[1], inputs[3]
    valid_flops = 2 * float(text_mask.sum()) * float(video_mask.sum()) * args.dim
    return {
        "seconds": seconds,
        "peak_extra_mb": (peak_kb - baseline_kb) / 1024,
        "checksum": checksum,
        "valid_flops": valid_flops,
    }


def half_precision_section(args) -> list[str]:
    """Time and accuracy of `compute_dtype` bf16 / fp16 against float32, in this process, random lengths."""
    from modeling_tvr.interaction_drl import prepare_tokens, token_wise_similarity

    torch.set_num_threads(args.threads)
    text, text_mask, video, video_mask, text_w, video_w = make_inputs(args)
    text, video = prepare_tokens(text, text_mask), prepare_tokens(video, video_mask)
    rows = [
        "| products in | time (s) | max abs error | mean abs error | same best video | "
        f"top-{min(10, args.videos)} overlap |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    exact = None
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        seconds, scores = timed(
            lambda dtype=dtype: token_wise_similarity(text, text_w, video, video_w, compute_dtype=dtype)
        )
        exact = scores if exact is None else exact
        error = (scores - exact).abs()
        same_best = (scores.argmax(1) == exact.argmax(1)).float().mean()
        k = min(10, exact.shape[1])  # a run with fewer videos compares its whole ranking
        top_exact, top = exact.topk(k, dim=1).indices, scores.topk(k, dim=1).indices
        overlap = (top_exact.unsqueeze(2) == top.unsqueeze(1)).any(2).float().mean()
        rows.append(
            f"| {str(dtype).removeprefix('torch.')} | {seconds:.3f} | {error.max():.2e} | {error.mean():.2e} | "
            f"{same_best:.3f} | {overlap:.3f} |"
        )
        print(rows[-1], flush=True)
    return [
        "**Half-precision products** (`compute_dtype`, random lengths; maxima in that dtype, sums in float32):",
        "",
        *rows,
        "",
        "This CPU (AVX2, no bf16 / fp16 matrix units) runs half-precision products slower than float32: the option is "
        "for GPUs, where the accuracy figures above carry over.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--chunk-mb", type=int, default=8, help="the package's chunk budget")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--variant", choices=["authors", "package", "matmul", "matmul_valid"], help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return

    passthrough = [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("variant", "write", "full")
    ]
    names = {
        "matmul": "matrix product over every position (what the authors multiply)",
        "matmul_valid": "matrix product over valid positions only (lower bound of an exact method)",
        "package": f"this package, chunked ({args.chunk_mb} MiB budget), padding skipped",
        "authors": "authors' full `[N, M, T, F]` tensor",
    }
    sections = []
    for scenario, flags in (
        ("caption and video lengths random (4-32 tokens, 1-12 frames)", []),
        (
            "no padding (32 tokens, 12 frames: the kernel alone)",
            ["--full"],
        ),
    ):
        results = {}
        for variant in names:
            command = [sys.executable, "-m", "bench.similarity", f"--variant={variant}", *passthrough, *flags]
            out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
            print(scenario, variant, results[variant], flush=True)
        same = abs(results["package"]["checksum"] - results["authors"]["checksum"]) <= 1e-6 * args.texts * args.videos
        valid_flops = results["package"]["valid_flops"]
        rows = [
            "| formulation | time (s) | GFLOP/s of the valid products | peak extra memory (MiB) |",
            "| --- | --- | --- | --- |",
        ]
        for variant, name in names.items():
            r = results[variant]
            rows.append(
                f"| {name} | {r['seconds']:.3f} | {valid_flops / r['seconds'] / 1e9:.1f} | {r['peak_extra_mb']:.0f} |"
            )
        speedup = results["authors"]["seconds"] / results["package"]["seconds"]
        bound_ratio = results["package"]["seconds"] / results["matmul_valid"]["seconds"]
        sections += [
            f"**{scenario}**",
            "",
            *rows,
            "",
            f"Package vs authors: {speedup:.2f}x faster; package vs the valid-positions bound: {bound_ratio:.2f}x its "
            f"time. Same scores: {'yes' if same else 'NO'} (checksums {results['package']['checksum']:.6f} / "
            f"{results['authors']['checksum']:.6f}).",
            "",
        ]
    sections += half_precision_section(args)
    text = "\n".join(
        [
            f"{args.texts} texts x {args.videos} videos, {args.tokens} tokens, {args.frames} frames, dim {args.dim}, "
            f"float32, {args.threads} threads, best of {args.repeat}, each variant in a fresh process; "
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {date.today().isoformat()}. "
            "Command: `python -m bench.similarity --write`.",
            "",
            *sections,
            "The package sorts texts and videos by length and trims each block to its longest item, so padded "
            "positions (scores known to be 0) are never multiplied; each block is one matrix product laid out "
            "`[texts, tokens, frames, videos]` so both maxima reduce contiguous rows. Peak memory is bounded by the "
            "chunk budget, not by N x M.",
        ]
    )
    print(text)
    if args.write:
        write_section("similarity", "Similarity: N texts x M videos (WTI scoring)", text)


if __name__ == "__main__":
    main()
