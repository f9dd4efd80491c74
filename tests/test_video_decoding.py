"""Frame sampling (index for index as the authors), PyAV decoding, including every way a file can fail, and the
frame transform's pixels."""

import numpy as np
import pytest
from PIL import Image

from modeling_tvr.frame_sampling import FrameSamplingError, sample_frame_indices, thin_positions
from modeling_tvr.frame_transforms import resize_and_crop, shortest_edge_size
from modeling_tvr.video_decoding import VideoReadError, read_video_frames

from .videos import red_levels, write_audio_only, write_video


def test_short_video_samples_one_frame_per_second():
    assert sample_frame_indices(75, 25.0).tolist() == [0, 25, 50]


def test_long_video_is_thinned_uniformly_to_max_frames():
    # 60 s at 25 fps: 60 candidates 0, 25, ..., 1475, kept at linspace(0, 59, 12) cast to int.
    candidates = np.arange(0, 1500, 25)
    expected = candidates[np.linspace(0, 59, 12).astype(int)]
    assert sample_frame_indices(1500, 25.0).tolist() == expected.tolist()
    assert expected.tolist()[:4] == [0, 125, 250, 400]


def test_segment_selects_frames_between_start_and_end():
    assert sample_frame_indices(1500, 25.0, start=10.5, end=20).tolist() == list(range(262, 501, 25))


def test_segment_end_past_the_video_is_clipped_to_the_last_frame():
    assert sample_frame_indices(100, 25.0, start=2, end=60).tolist() == [50, 75]


def test_fractional_frame_rate_and_higher_sampling_rate():
    assert sample_frame_indices(90, 29.97).tolist() == [0, 30, 60]
    assert sample_frame_indices(60, 25.0, video_framerate=2).tolist() == [0, 12, 24, 36, 48]  # round(12.5) == 12


def test_head_and_tail_slicing():
    positions = np.arange(20)
    assert thin_positions(positions, 4, 0).tolist() == [0, 1, 2, 3]
    assert thin_positions(positions, 4, 1).tolist() == [16, 17, 18, 19]
    assert thin_positions(positions, 4, 2).tolist() == [0, 6, 12, 19]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_frames": 0}, "no frames"),
        ({"start": 5, "end": 9}, "lies outside the video"),
        ({"start": 3, "end": 1}, "not a valid time range"),
        ({"start": -1, "end": 1}, "not a valid time range"),
    ],
)
def test_impossible_selections_are_rejected(kwargs, message):
    options = {"num_frames": 100, "fps": 25.0, **kwargs}
    with pytest.raises(FrameSamplingError, match=message):
        sample_frame_indices(**options)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        "short": write_video(folder / "short.mp4", 5),
        "long": write_video(folder / "long.mp4", 30),
        "folder": folder,
    }


@pytest.mark.parametrize("strategy", ["decode", "seek", "auto"])
def test_decoded_frames_are_the_sampled_ones(videos, strategy):
    result = read_video_frames(videos["long"], strategy=strategy)
    expected = sample_frame_indices(750, 25.0)
    assert result.indices.tolist() == expected.tolist()
    assert result.frames.shape == (12, 48, 64, 3) and result.frames.dtype == np.uint8
    # The red level encodes the frame index (7 * index mod 256); H.264 is lossy, so allow a little.
    assert np.allclose(red_levels(result.frames), [(7 * i) % 256 for i in expected], atol=3)


def test_seek_and_decode_give_identical_pixels_for_a_segment(videos):
    by_seek = read_video_frames(videos["long"], start=10.5, end=20, strategy="seek")
    by_decode = read_video_frames(videos["long"], start=10.5, end=20, strategy="decode")
    assert by_seek.indices.tolist() == by_decode.indices.tolist() == list(range(262, 501, 25))
    assert np.array_equal(by_seek.frames, by_decode.frames)


def test_video_shorter_than_max_frames_gives_fewer_frames(videos):
    assert read_video_frames(videos["short"]).indices.tolist() == [0, 25, 50, 75, 100]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(VideoReadError, match="nope.mp4: file not found"):
        read_video_frames(tmp_path / "nope.mp4")


def test_truncated_file_is_reported(videos, tmp_path):
    data = videos["long"].read_bytes()
    broken = tmp_path / "truncated.mp4"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="truncated.mp4: .*(truncated|corrupt)"):
        read_video_frames(broken)


def test_corrupt_file_is_reported(tmp_path):
    broken = tmp_path / "noise.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match="noise.mp4: .*(corrupt|zero-length)"):
        read_video_frames(broken)


def test_file_without_video_stream_is_reported(tmp_path):
    with pytest.raises(VideoReadError, match="no video stream"):
        read_video_frames(write_audio_only(tmp_path / "sound.wav"))


def test_zero_length_video_is_reported(tmp_path):
    import av

    path = tmp_path / "empty.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    with pytest.raises(VideoReadError, match="empty.avi: .*no frames"):
        read_video_frames(path)


def test_segment_outside_the_video_is_reported(videos):
    with pytest.raises(VideoReadError, match="short.mp4: segment .* lies outside the video"):
        read_video_frames(videos["short"], start=30, end=40)


@pytest.mark.parametrize("resample", [0, 1, 2, 3, 4, 5])  # nearest, lanczos, bilinear, bicubic, box, hamming
@pytest.mark.parametrize(("width", "height"), [(320, 240), (240, 320), (321, 241), (97, 1000), (225, 224)])
@pytest.mark.parametrize(("shortest", "crop"), [(224, (224, 224)), (112, (100, 77)), (97, (97, 97))])
def test_resize_and_crop_gives_pils_pixels(width, height, shortest, crop, resample):
    # The crop comes between PIL's horizontal and vertical passes: the pixels must be those of one resize, then crop.
    frame = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(frame)
    size = shortest_edge_size(width, height, shortest)
    expected = image.resize(size, resample=resample) if size != image.size else image
    top, left = int(round((size[1] - crop[0]) / 2.0)), int(round((size[0] - crop[1]) / 2.0))
    expected = np.asarray(expected.crop((left, top, left + crop[1], top + crop[0])))
    np.testing.assert_array_equal(resize_and_crop(frame, shortest, crop[0], crop[1], resample), expected)
