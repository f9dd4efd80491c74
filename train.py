"""Fine-tune and evaluate DRL with Accelerate.

    python train.py                                  # the embedded toy benchmark, tiny CLIP from scratch, on CPU
    accelerate launch train.py --benchmark toy       # the same on every process / GPU Accelerate is configured for
    python train.py --eval_only --init outputs/drl-toy   # results go to outputs/eval/drl-toy-toy, not the model
    python train.py --preset msrvtt-wti-cdcr --data_dir data/msrvtt   # one line of the authors' scripts/msrvtt.sh
    python train.py run.yaml                         # every option from a JSON / YAML file
    python train.py --benchmark videofolder --data_dir my_videos --clip openai/clip-vit-base-patch32   # your videos
    python train.py --dataset_name me/my-clips --video_dir my_videos --clip openai/clip-vit-base-patch32

Your own videos: a folder with a metadata.csv (file_name,caption; several rows of one video are several captions;
optional split, start, end columns, or train/ validation/ test/ folders each with its own metadata file), or any
dataset `datasets` loads (Hub id, parquet / csv / json) with a video and a caption column. Without a test split, 10%
of the videos (--test_fraction) are held out as test; the run prints which split is used for what.

Without `--clip` or `--init` the model is a tiny CLIP trained from scratch, with a BPE vocabulary learned from
the training captions (no Hub access needed); otherwise the model starts from a pretrained transformers CLIP
(Hub id or local folder) or a saved DRL folder and uses its tokenizer.
"""

from modeling_tvr.training.command_line import build_parser, parse_arguments
from modeling_tvr.training.run import run


def main() -> None:
    """Trains and / or evaluates as the command line says (`python train.py --help`)."""
    run(*parse_arguments(build_parser(description=__doc__)))


if __name__ == "__main__":
    main()
