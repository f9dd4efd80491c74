"""DRLVideoProcessor: the paper's defaults, pixels equal to a plain PIL reference, masks, mixed inputs, errors."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from modeling_tvr.frame_sampling import thin_positions
from modeling_tvr.video_decoding import VideoReadError, read_video_frames
from modeling_tvr.video_processing_drl import DRLVideoProcessor

from .videos import write_video

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def pil_reference(frame: np.ndarray, size: int, crop: int) -> torch.Tensor:
    """The authors' steps written out plainly: PIL bicubic resize of the short side, centre crop, /255, normalise."""
    image = Image.fromarray(frame)
    w, h = image.size
    new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    image = image.resize(new, Image.BICUBIC)
    left, top = int(round((image.width - crop) / 2.0)), int(round((image.height - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    x = torch.tensor(np.array(image), dtype=torch.float32).permute(2, 0, 1) / 255.0
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {"short": write_video(folder / "short.mp4", 3), "long": write_video(folder / "long.mp4", 20)}


def test_defaults_are_the_papers_settings():
    processor = DRLVideoProcessor()
    assert processor.size == {"shortest_edge": 224} and processor.crop_size == {"height": 224, "width": 224}
    assert (processor.max_frames, processor.video_framerate, processor.slice_framepos) == (12, 1, 2)
    assert processor.resample == Image.BICUBIC
    assert tuple(processor.image_mean) == MEAN and tuple(processor.image_std) == STD


@pytest.mark.parametrize(("height", "width"), [(48, 64), (65, 47), (224, 224), (37, 91)])
def test_pixels_match_a_plain_pil_reference(height, width):
    rng = np.random.default_rng(height)
    frames = rng.integers(0, 256, (3, height, width, 3), dtype=np.uint8)
    processor = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, max_frames=3)
    pixels = processor(frames)["pixel_values_videos"][0]
    reference = torch.stack([pil_reference(frame, 32, 32) for frame in frames])
    assert (pixels - reference).abs().max().item() <= 1e-5


def test_video_file_pixels_follow_the_sampled_frames(clips):
    processor = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    out = processor(str(clips["long"]))
    frames = read_video_frames(clips["long"]).frames
    reference = torch.stack([pil_reference(frame, 32, 32) for frame in frames])
    assert out["pixel_values_videos"].shape == (1, 12, 3, 32, 32)
    assert (out["pixel_values_videos"][0] - reference).abs().max().item() <= 1e-5


def test_fewer_frames_than_max_frames_are_padded_with_zeros_and_masked(clips):
    processor = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    out = processor(clips["short"])  # 3 s at 1 fps: 3 frames
    assert out["video_mask"].tolist() == [[1, 1, 1] + [0] * 9]
    assert out["pixel_values_videos"][0, 3:].abs().sum().item() == 0


def test_a_batch_mixes_paths_segments_and_arrays(clips):
    processor = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, max_frames=4)
    array = np.zeros((2, 40, 50, 3), np.uint8)
    out = processor([clips["short"], (str(clips["long"]), 4.0, 6.5), array])
    assert out["pixel_values_videos"].shape == (3, 4, 3, 32, 32)
    assert out["video_mask"].sum(dim=1).tolist() == [3, 3, 2]  # segment 4-6.5 s: frames 100, 125, 150


def test_call_overrides_settings_without_changing_the_processor(clips):
    processor = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    assert processor(clips["long"], max_frames=5)["video_mask"].shape == (1, 5)
    assert processor.max_frames == 12
    with pytest.raises(TypeError, match="Unknown video processor options"):
        processor(clips["long"], frames_per_second=3)


def test_save_and_load_keep_every_setting(tmp_path):
    processor = DRLVideoProcessor(max_frames=64, video_framerate=2, slice_framepos=0, decode_strategy="seek")
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "video_preprocessor_config.json").is_file()
    loaded = DRLVideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()


def test_a_failing_video_is_named_with_its_position_in_the_batch(clips, tmp_path):
    processor = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    with pytest.raises(VideoReadError, match=r"missing.mp4: file not found \(video 1 of the batch\)") as error:
        processor([clips["short"], tmp_path / "missing.mp4"])
    assert (error.value.reason, error.value.position, error.value.where) == ("file not found", 1, "the batch")
    # Rebuilt from its fields when it crosses a process boundary (data-loader workers pickle it).
    copy = pickle.loads(pickle.dumps(error.value))
    assert (type(copy), str(copy), copy.position) == (VideoReadError, str(error.value), 1)
    with pytest.raises(VideoReadError, match=r"segment .* lies outside the video .* \(video 0 of the batch\)"):
        processor([(str(clips["short"]), 10.0, 12.0)])


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 40, 50, 3), np.float32), np.zeros((40, 50, 3, 2), np.uint8), np.zeros((0, 8, 8, 3), np.uint8)]
)
def test_malformed_arrays_are_rejected(bad):
    with pytest.raises(VideoReadError, match="array input"):
        DRLVideoProcessor()(bad)


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="slice_framepos must be 0 \\(head\\), 1 \\(tail\\) or 2 \\(uniform\\), got 5"):
        DRLVideoProcessor(slice_framepos=5)
    with pytest.raises(ValueError, match="decode_strategy must be one of .*, got 'fast'"):
        DRLVideoProcessor(decode_strategy="fast")


def test_sampling_and_decoding_check_their_options_as_the_processor_does(clips):
    """One check per option, shared by the processor and the functions it calls (which fail before any work)."""
    with pytest.raises(ValueError, match="slice_framepos must be 0 \\(head\\), 1 \\(tail\\) or 2"):
        thin_positions(np.arange(3), max_frames=12, slice_framepos=5)  # even when nothing needs thinning
    with pytest.raises(ValueError, match="^strategy must be one of"):
        read_video_frames(clips["short"], strategy="fast")


@pytest.mark.parametrize(
    "options",
    [{}, {"do_normalize": False}, {"do_rescale": False}, {"rescale_factor": 0.5, "image_mean": [0.1, 0.2, 0.3]}],
)
def test_normalize_on_the_cpu_gives_the_lookup_tables_numbers_for_every_value(options):
    """Other devices look values up in a table built on the CPU; the CPU computes them in place: same bits."""
    from modeling_tvr.video_processing_drl import _normalization_table

    processor = DRLVideoProcessor(**options)
    every_value = torch.arange(256, dtype=torch.uint8).view(1, 16, 16, 1).repeat(2, 1, 1, 3)  # [F, H, W, 3]
    table = _normalization_table(
        "cpu",
        processor.rescale_factor if processor.do_rescale else None,
        tuple(processor.image_mean) if processor.do_normalize else None,
        tuple(processor.image_std) if processor.do_normalize else None,
    ).view(3, 256)
    expected = table[:, every_value[..., 0].long()].movedim(0, 1)  # [F, 3, H, W]
    assert torch.equal(processor.normalize(every_value), expected)
