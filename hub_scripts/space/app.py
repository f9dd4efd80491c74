"""Gradio demo (a Hugging Face Space) for DRL text-video retrieval.

Type a query, upload videos (or use the generated example clips), and see the videos ranked by the model's
similarity together with the query's WTI token weights: how much each BPE piece of the query counts in the score,
the token weights of the paper. Runs locally on a saved folder or a Hub repo:

    python hub_scripts/space/app.py --model DIR_OR_REPO [--port 7860]

On a Space, the `MODEL_ID` variable names the model repository. The model, its processor and the
`text-video-retrieval` pipeline load with `trust_remote_code=True`, so `modeling_tvr` need not be installed.
The logic (`DRLDemo.rank_videos`, `DRLDemo.token_weight_image`) does not need gradio; only `build_app` does.
"""

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from transformers import pipeline

MODEL_ENV = "MODEL_ID"
# Queries for the example clips: everyday words that a CLIP vocabulary holds, and captions in the toy benchmark's
# words, which are all a model trained by `python train.py` knows. The demo offers the ones its tokenizer knows.
EXAMPLE_QUERIES = [
    "a red light flashing",
    "a white ball moving across a blue background",
    "green grass waving in the wind",
    "an orange sunset sky",
    "a red circle moves to the left",
    "a blue square moves up",
]
EXAMPLE_CLIPS = ("red_flashing", "ball_on_blue", "green_grass", "sunset", "red_circle_left", "blue_square_up")
EMPTY_QUERY_MESSAGE = "Type a query first: describe what happens in the video you are looking for."
SPECIAL_WORDS = {"<|startoftext|>": "[SOT]", "<|endoftext|>": "[EOT]"}
# CLIP's BPE marks the last piece of a word with this suffix.
WORD_END = "</w>"


# ---------------------------------------------------------------------- example clips
def _clip_frames(name: str, count: int, height: int, width: int) -> list[np.ndarray]:
    rows, cols = np.mgrid[0:height, 0:width]
    frames = []
    for index in range(count):
        t = index / max(count - 1, 1)
        frame = np.zeros((height, width, 3), np.uint8)
        if name == "red_flashing":
            frame[..., 0] = 255 if index % 6 < 3 else 60
        elif name == "ball_on_blue":
            frame[..., 2] = 200
            inside = (rows - height / 2) ** 2 + (cols - (0.1 + 0.8 * t) * width) ** 2 < (height / 6) ** 2
            frame[inside] = 255
        elif name == "green_grass":
            sway = (np.sin(cols / 4.0 + index / 2.0) * 40).astype(np.int16)
            frame[..., 1] = np.clip(150 + sway + (rows % 7) * 8, 0, 255)
        elif name in ("red_circle_left", "blue_square_up"):  # a toy-benchmark scene: a shape sliding over a dark field
            frame[...] = (20, 20, 28)
            if name == "red_circle_left":
                inside = (rows - height / 2) ** 2 + (cols - (0.8 - 0.6 * t) * width) ** 2 < (height / 6) ** 2
                frame[inside] = (225, 35, 35)
            else:
                centre = (0.8 - 0.6 * t) * height
                inside = (np.abs(rows - centre) < height / 7) & (np.abs(cols - width / 2) < height / 7)
                frame[inside] = (45, 90, 245)
        else:  # sunset: an orange-to-purple sky that darkens
            frame[..., 0] = np.clip(255 - rows * 60 / height - t * 60, 0, 255)
            frame[..., 1] = np.clip(140 - rows * 100 / height - t * 40, 0, 255)
            frame[..., 2] = np.clip(40 + rows * 120 / height, 0, 255)
        frames.append(frame)
    return frames


def write_example_clips(folder: str | os.PathLike, seconds: float = 3.0, fps: int = 10) -> list[Path]:
    """Writes the small H.264 example clips of `EXAMPLE_CLIPS` into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in EXAMPLE_CLIPS:
        path = folder / f"{name}.mp4"
        if not path.exists():
            with av.open(str(path), "w") as container:
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"  # even sizes for yuv420p
                for frame in _clip_frames(name, int(seconds * fps), 96, 160):
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------- the chart
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def draw_weight_chart(words: list[str], weights: list[float], title: str = "") -> Image.Image:
    """A horizontal bar chart (PIL only): one row per label, bar length proportional to its weight."""
    font, row_height, label_width, bar_width, margin = _font(14), 26, 150, 360, 12
    # Title below the band where gradio's image label sits.
    title_y = 34
    top = title_y + 26 if title else margin
    image = Image.new("RGB", (label_width + bar_width + 80, top + row_height * len(words) + margin), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((margin, title_y), title, fill="black", font=font)
    largest = max(weights, default=0.0) or 1.0
    for row, (word, weight) in enumerate(zip(words, weights, strict=True)):
        y = top + row * row_height
        draw.text((margin, y + 5), word[:18], fill="black", font=font)
        length = int(bar_width * weight / largest)
        colour = (150, 150, 150) if word in SPECIAL_WORDS.values() else (66, 133, 244)
        draw.rectangle((label_width, y + 4, label_width + max(length, 1), y + row_height - 4), fill=colour)
        draw.text((label_width + length + 6, y + 5), f"{weight:.3f}", fill="black", font=font)
    return image


# ---------------------------------------------------------------------- the logic
def _rows(ranked: list[dict[str, Any]]) -> list[list[Any]]:
    return [[rank, Path(item["video"]).name, round(item["score"], 4)] for rank, item in enumerate(ranked, 1)]


class DRLDemo:
    """The demo's logic: a `text-video-retrieval` pipeline plus the token weights of a query."""

    def __init__(self, model_id: str, example_dir: str | os.PathLike | None = None, device: int | str | None = None):
        if device is None:
            device = 0 if torch.cuda.is_available() else -1
        self.pipeline = pipeline("text-video-retrieval", model=model_id, trust_remote_code=True, device=device)
        self.model, self.processor = self.pipeline.model, self.pipeline.processor
        # A folder of our own is deleted with the demo (or at exit); a folder the caller names is theirs to keep.
        self._own_folder = None if example_dir else tempfile.TemporaryDirectory(prefix="drl-examples-")
        self.example_dir = Path(example_dir or self._own_folder.name)
        self.examples = write_example_clips(self.example_dir)
        self.example_queries = [query for query in EXAMPLE_QUERIES if self.knows_every_word(query)] or EXAMPLE_QUERIES

    def close(self) -> None:
        """Deletes the example clips if the demo generated them into a temporary folder of its own."""
        if self._own_folder is not None:
            self._own_folder.cleanup()

    def knows_every_word(self, query: str) -> bool:
        """Whether every word of `query` is one token of the model's vocabulary (not split into BPE pieces)."""
        pieces = self.processor.tokenizer.tokenize(query)
        return len(pieces) == len(query.split()) and all(piece.endswith(WORD_END) for piece in pieces)

    def _ranked(self, query: str, videos: list[str] | None) -> list[dict[str, Any]]:
        # An empty box gets the demo's own prompt; any other text the model cannot encode is refused by the caption
        # rule the pipeline and processor share (`caption_checks`).
        if not query or not query.strip():
            raise ValueError(EMPTY_QUERY_MESSAGE)
        paths = [str(video) for video in videos] if videos else [str(path) for path in self.examples]
        return self.pipeline(query, videos=paths)

    def rank_videos(self, query: str, videos: list[str] | None = None) -> list[list[Any]]:
        """Rows `[rank, video name, score]`, best first; the example clips when no videos are given."""
        return _rows(self._ranked(query, videos))

    def token_piece_weights(self, query: str) -> list[tuple[str, float]]:
        """The query's WTI token weights, one per BPE piece, start and end tokens included (they sum to 1).

        A word the vocabulary splits shows as its pieces, all but the last marked with a trailing "-" (``"flash-",
        "ing"``); summing them per word would make a word split in many pieces look the most important.
        """
        if not query or not query.strip():
            raise ValueError(EMPTY_QUERY_MESSAGE)
        encoded = self.processor(text=[query], return_tensors="pt")
        device = self.pipeline.device
        input_ids, attention_mask = encoded["input_ids"].to(device), encoded["attention_mask"].to(device)
        with torch.inference_mode():
            embeds = self.model.get_text_features(input_ids, attention_mask).text_embeds
            weights = self.model.token_weights(embeds, attention_mask)[0].float().cpu()
        length = int(attention_mask[0].sum())
        tokens = self.processor.tokenizer.convert_ids_to_tokens(input_ids[0, :length].tolist())
        labels = [
            SPECIAL_WORDS.get(token) or (token.removesuffix(WORD_END) if token.endswith(WORD_END) else token + "-")
            for token in tokens
        ]
        return list(zip(labels, weights[:length].tolist(), strict=True))

    def token_weight_image(self, query: str) -> Image.Image:
        """The query's WTI token weights as a bar chart, a row per BPE piece."""
        words = self.token_piece_weights(query)
        interaction = getattr(self.model.config, "interaction", "wti")
        title = f"Token weights ({interaction.upper()}) for: {query}"[:70]
        return draw_weight_chart([w for w, _ in words], [weight for _, weight in words], title)

    def search(self, query: str, files: list[str] | None = None) -> tuple[list[list[Any]], str, Image.Image]:
        """The UI's one call: ranked rows, the best video's path and the token-weight chart."""
        ranked = self._ranked(query, files)
        return _rows(ranked), ranked[0]["video"], self.token_weight_image(query)


# ---------------------------------------------------------------------- the UI
def build_app(demo: DRLDemo):
    """The gradio Blocks UI around `demo` (API name of the search: `/search`)."""
    import gradio as gr

    def search(query: str, files: list[str] | None):
        try:
            return demo.search(query, files)
        except ValueError as error:  # empty query, unreadable video: show the message, not a stack trace
            raise gr.Error(str(error)) from error

    # The page opens on a result computed once at start-up: the first example query over the example clips.
    rows, best_path, chart = demo.search(demo.example_queries[0])
    with gr.Blocks(title="DRL text-video retrieval") as app:
        gr.Markdown(
            "# DRL text-video retrieval\n"
            "Rank videos by a text query with DRL (Disentangled Representation Learning for Text-Video Retrieval). "
            "Upload videos or leave the upload empty to search the example clips "
            f"({', '.join(path.stem for path in demo.examples)}). The chart shows how much each token of the query "
            "weighs in the score (the weighted token-wise interaction's token weights, one row per BPE piece: a word "
            "the vocabulary splits shows as its pieces, marked with a trailing '-')."
        )
        with gr.Row():
            with gr.Column():
                query = gr.Textbox(label="Query", value=demo.example_queries[0])
                files = gr.File(label="Videos (optional)", file_count="multiple", file_types=["video"])
                button = gr.Button("Search", variant="primary")
                gr.Examples(examples=[[q] for q in demo.example_queries], inputs=[query])
            with gr.Column():
                table = gr.Dataframe(
                    value=rows, headers=["rank", "video", "score"], label="Ranked videos", interactive=False
                )
                best = gr.Video(value=best_path, label="Best match", height=220)
                weights = gr.Image(value=chart, label="Token weights", type="pil")
        button.click(search, inputs=[query, files], outputs=[table, best, weights], api_name="search")
        query.submit(search, inputs=[query, files], outputs=[table, best, weights], api_name=False)
    return app


def main(argv: list[str] | None = None) -> None:
    """Command line: `--model` (default: the MODEL_ID variable), `--port`, `--host`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get(MODEL_ENV), help=f"folder or Hub repo (default ${MODEL_ENV})")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    args = parser.parse_args(argv)
    if not args.model:
        parser.error(f"give --model DIR_OR_REPO or set {MODEL_ENV}")
    demo = DRLDemo(args.model)
    try:
        build_app(demo).launch(server_name=args.host, server_port=args.port, allowed_paths=[str(demo.example_dir)])
    finally:
        demo.close()


if __name__ == "__main__":
    main()
