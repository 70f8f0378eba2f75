"""Batched training augmentation (harness.data.augment) and in-model pixel normalisation."""

from __future__ import annotations

import pytest
import torch

from harness.data.augment import (
    AugmentationError,
    HorizontalFlip,
    RandomCrop,
    RandomResizedCrop,
    parse_augmentation,
)
from harness.data.pixels import PixelNormalization


def _images(n: int = 6, size: int = 8) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(1),
                         dtype=torch.uint8)  # fmt: skip


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_crop_cuts_a_window_of_the_zero_padded_image() -> None:
    x = _images()
    out = RandomCrop(padding=2)(x, _gen())
    assert out.dtype == torch.uint8 and out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for image, crop in zip(padded, out, strict=True):
        windows = [image[:, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(crop, w) for w in windows)


def test_random_crop_offsets_vary_across_the_batch_and_cover_the_range() -> None:
    x = torch.ones(400, 1, 4, 4, dtype=torch.uint8)
    out = RandomCrop(padding=1)(x, _gen())
    # Rows of zeros at the top or bottom show the vertical offset of each crop.
    top_zero = (out[:, 0, 0, :] == 0).all(dim=1)
    bottom_zero = (out[:, 0, -1, :] == 0).all(dim=1)
    assert top_zero.any() and bottom_zero.any() and (~top_zero & ~bottom_zero).any()


def test_flip_probability_extremes_and_mixture() -> None:
    x = _images(200)
    assert torch.equal(HorizontalFlip(p=0.0)(x, _gen()), x)
    assert torch.equal(HorizontalFlip(p=1.0)(x, _gen()), x.flip(3))
    mixed = HorizontalFlip(p=0.5)(x, _gen())
    flipped = sum(torch.equal(m, f) for m, f in zip(mixed, x.flip(3), strict=True))
    assert 60 < flipped < 140


def test_random_resized_crop_of_the_whole_image_is_the_image() -> None:
    x = _images()
    out = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, _gen())
    assert out.dtype == torch.float32 and out.shape == x.shape
    torch.testing.assert_close(out, x.float() / 255, atol=1e-5, rtol=0)


def test_random_resized_crop_zooms_in_and_stays_in_range() -> None:
    x = _images(32, size=16)
    out = RandomResizedCrop(scale=(0.1, 0.3))(x, _gen())
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x.float() / 255)


def test_augmentation_is_a_function_of_the_seed() -> None:
    steps = {"train": [{"random_crop": {"padding": 4}}, "horizontal_flip",
                       {"random_resized_crop": {"scale": [0.5, 1.0]}}]}  # fmt: skip
    augment = parse_augmentation(steps)
    x = _images(16, size=32)
    assert torch.equal(augment(x, _gen(3)), augment(x, _gen(3)))
    assert not torch.equal(augment(x, _gen(3)), augment(x, _gen(4)))
    assert augment.describe()[0] == {"random_crop": {"padding": 4}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": [{"random_crop_": {}}]}, 'Did you mean "random_crop"'),
        ({"train": [{"random_crop": {"pad": 4}}]}, "unknown parameter"),
        ({"train": [{"random_crop": {"padding": -1}}]}, ">= 0"),
        ({"train": [{"horizontal_flip": {"p": 2}}]}, "[0, 1]"),
        ({"train": [{"random_resized_crop": {"scale": [0.5, 2.0]}}]}, "scale"),
        ({"test": []}, "never augmented"),
    ],
)
def test_bad_augmentation_blocks_say_what_to_fix(raw: dict, message: str) -> None:
    with pytest.raises(AugmentationError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_augmentation(raw)


def test_no_augmentation_block_means_none() -> None:
    assert not parse_augmentation(None)
    assert parse_augmentation(None).describe() == []


def test_pixel_normalization_reads_uint8_and_unit_floats_alike() -> None:
    norm = PixelNormalization([0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    x = _images()
    torch.testing.assert_close(norm(x), norm(x.float() / 255))
    expected = (x.float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.25, 0.3]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), expected)
    assert norm.state_dict() == {}  # statistics belong to the suite, not to weights


def test_pixel_normalization_refuses_a_zero_std() -> None:
    with pytest.raises(ValueError, match="> 0"):
        PixelNormalization([0.5], [0.0])
