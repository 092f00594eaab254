"""Grad-CAM and its crop boxes: agreement with explicit autograd, known boxes, geometry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from neuron_concepts import gradcam
from neuron_concepts.errors import InputDataError
from neuron_concepts.gradcam import (Box, boxes_for_manifest, compute_cams, crop_box, crop_boxes,
                                     grad_cam, upsample_cam)
from neuron_concepts.io import load_cams, save_cams


def small_net(seed: int = 0) -> nn.Sequential:
    """A conv net whose class scores depend non-linearly on where the features are.

    The in-place ReLU right after the hooked conv checks that Grad-CAM's leaf is never
    overwritten by the layers that follow it.
    """
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.Conv2d(4, 6, 3, padding=1, stride=2), nn.ReLU(inplace=True))
    head = nn.Sequential(nn.Conv2d(6, 8, 1), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 5))
    net = nn.Sequential(features, head).eval()
    with torch.no_grad():  # non-trivial running statistics for the eval-mode BatchNorm
        net[0][1].running_mean.uniform_(-0.5, 0.5)
        net[0][1].running_var.uniform_(0.5, 2.0)
    return net


def explicit_grad_cam(net: nn.Sequential, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM at net[0][3] by running the pieces by hand, one image at a time."""
    cams, predicted = [], []
    for image in images:
        activation = net[0][:4](image[None]).detach().requires_grad_(True)
        logits = net[1](torch.relu(activation))
        cls = int(logits.argmax())
        (grad,) = torch.autograd.grad(logits[0, cls], activation)
        weights = grad[0].mean(dim=(1, 2))
        cam = torch.relu((weights[:, None, None] * activation[0].detach()).sum(dim=0))
        cams.append(cam / cam.max() if cam.max() > 0 else cam)
        predicted.append(cls)
    return torch.stack(cams), torch.tensor(predicted)


def test_grad_cam_matches_explicit_autograd_per_image():
    net = small_net()
    images = torch.randn(5, 3, 12, 16)
    cams, predicted = grad_cam(net, net[0][3], images)
    expected_cams, expected_pred = explicit_grad_cam(net, images)
    assert cams.shape == (5, 6, 8) and cams.dtype == torch.float32
    assert predicted.dtype == torch.int64
    assert torch.equal(predicted, expected_pred)
    torch.testing.assert_close(cams, expected_cams, atol=1e-5, rtol=0)
    assert torch.all(cams.amax(dim=(1, 2)) == 1)


def test_grad_cam_leaves_no_hooks_grads_or_grad_mode_behind():
    net = small_net()
    layer = net[0][3]
    flags = [p.requires_grad for p in net.parameters()]
    for grad_context in (torch.enable_grad, torch.no_grad, torch.inference_mode):
        with grad_context():
            before = torch.is_grad_enabled()
            grad_cam(net, layer, torch.randn(2, 3, 8, 8))
            assert torch.is_grad_enabled() == before
    assert not layer._forward_hooks and not layer._forward_pre_hooks
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is None for p in net.parameters())
    assert not net.training


def test_grad_cam_works_with_frozen_weights():
    net = small_net()
    images = torch.randn(3, 3, 10, 10)
    expected, _ = grad_cam(net, net[0][3], images)
    for p in net.parameters():
        p.requires_grad_(False)
    cams, _ = grad_cam(net, net[0][3], images)
    torch.testing.assert_close(cams, expected, atol=0, rtol=0)


def test_grad_cam_rejects_a_layer_outside_the_model_and_removes_its_hook():
    net = small_net()
    stranger = nn.Conv2d(3, 3, 1)
    with pytest.raises(ValueError, match="did not run"):
        grad_cam(net, stranger, torch.randn(1, 3, 8, 8))
    assert not stranger._forward_hooks


def test_grad_cam_batch_equals_one_image_at_a_time_on_resnet():
    torch.manual_seed(1)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    images = torch.randn(4, 3, 64, 64)
    cams, predicted = grad_cam(model, model.layer4, images)
    for i in range(len(images)):
        one_cam, one_pred = grad_cam(model, model.layer4, images[i:i + 1])
        torch.testing.assert_close(cams[i], one_cam[0], atol=1e-5, rtol=0)
        assert predicted[i] == one_pred[0]


def test_all_zero_cam_stays_zero():
    # A class score that ignores the layer's positive part gives ReLU(.) = 0 everywhere.
    class Negative(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Identity()

        def forward(self, x):
            a = self.features(x)
            return torch.stack([-a.sum(dim=(1, 2, 3)), torch.full((len(a),), -1e9)], dim=1)

    net = Negative()
    cams, predicted = grad_cam(net, net.features, torch.rand(2, 3, 4, 4))
    assert torch.equal(cams, torch.zeros(2, 4, 4)) and predicted.tolist() == [0, 0]


# --------------------------------------------------------------------------------------
# Evidence in a known place, through the whole stage (files, resize, batches, boxes)


class BrightnessClassifier(nn.Module):
    """Class 0's score is the sum of a 'brightness' feature map; class 1 is a constant.

    Grad-CAM of class 0 at ``features`` is then the brightness map itself, so the
    box must land on the bright part of the image.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 2, kernel_size=4, stride=4, bias=False)
        with torch.no_grad():
            self.features.weight[0] = 1 / 48     # mean brightness of a 4x4 patch
            self.features.weight[1] = -1 / 48    # a channel the score ignores

    def forward(self, x):
        a = self.features(x)
        return torch.stack([a[:, 0].sum(dim=(1, 2)), torch.zeros(len(a))], dim=1)


def quadrant_image(height: int, width: int, right: bool, bottom: bool) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    rows = slice(height // 2, None) if bottom else slice(0, height // 2)
    cols = slice(width // 2, None) if right else slice(0, width // 2)
    pixels[rows, cols] = 255
    return Image.fromarray(pixels)


def test_box_lands_on_the_bright_quadrant(tmp_path):
    quadrants = [(False, False), (True, False), (False, True), (True, True)]
    height, width = 200, 300
    paths = []
    for i, (right, bottom) in enumerate(quadrants):
        paths.append(tmp_path / f"q{i}.png")
        quadrant_image(height, width, right, bottom).save(paths[-1])
    net = BrightnessClassifier().eval()
    cams, predicted = compute_cams(net, net.features, paths, input_size=32, mean=[0, 0, 0],
                                   std=[1, 1, 1], batch_size=3)
    assert cams.shape == (4, 8, 8) and predicted.tolist() == [0, 0, 0, 0]
    manifest = pd.DataFrame({"image_id": [f"q{i}" for i in range(4)], "path": paths,
                             "width": width, "height": height})
    save_cams(tmp_path / "cams.npz", manifest.image_id, cams, predicted)
    boxes = boxes_for_manifest(load_cams(tmp_path / "cams.npz"), manifest, crop_fraction=0.5)
    assert list(boxes.columns) == gradcam.BOX_COLUMNS
    assert boxes.image_id.tolist() == manifest.image_id.tolist()
    assert not boxes.cam_zero.any()
    for (right, bottom), box in zip(quadrants, boxes.itertuples()):
        assert box.x1 - box.x0 == box.y1 - box.y0 == 100
        centre_x, centre_y = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        assert (centre_x >= width / 2) == right and (centre_y >= height / 2) == bottom


def test_boxes_refuse_cams_of_another_manifest(tmp_path):
    save_cams(tmp_path / "cams.npz", ["a", "b"], np.ones((2, 2, 2)), np.zeros(2))
    manifest = pd.DataFrame({"image_id": ["a", "c"], "width": [4, 4], "height": [4, 4]})
    with pytest.raises(InputDataError, match="rerun the grad_cam rule"):
        boxes_for_manifest(load_cams(tmp_path / "cams.npz"), manifest)


# --------------------------------------------------------------------------------------
# Box geometry


def peak_map(height: int, width: int, x: int, y: int) -> np.ndarray:
    cam = np.zeros((height, width), dtype=np.float32)
    cam[y, x] = 1
    return cam


@pytest.mark.parametrize("height, width, x, y, expected", [
    (10, 10, 0, 0, (0, 0, 5, 5)),          # top-left corner: shifted inside
    (10, 10, 9, 9, (5, 5, 10, 10)),        # bottom-right corner
    (10, 10, 0, 5, (0, 3, 5, 8)),          # left edge: only x shifts
    (10, 20, 5, 4, (3, 2, 8, 7)),          # interior, odd side: centred exactly
    (10, 20, 19, 0, (15, 0, 20, 5)),       # top-right corner of a wide image
    (3, 5, 4, 2, (3, 1, 5, 3)),            # tiny: side round(1.5) = 2, shifted in
    (3, 5, 2, 1, (1, 0, 3, 2)),            # tiny, even side: peak right of/below the middle
    (1, 1, 0, 0, (0, 0, 1, 1)),            # a single pixel: at least 1 px
])
def test_box_is_centred_on_the_peak_and_shifted_inside(height, width, x, y, expected):
    assert crop_box(peak_map(height, width, x, y), 0.5) == Box(*expected, cam_zero=False)


def test_box_of_all_zero_cam_is_the_centre_crop_and_flagged():
    assert crop_box(np.zeros((10, 20)), 0.5) == Box(7, 2, 12, 7, cam_zero=True)
    assert crop_box(np.zeros((3, 5)), 0.5) == Box(1, 0, 3, 2, cam_zero=True)


def test_box_takes_the_first_maximum_in_row_major_order():
    cam = np.zeros((9, 9))
    cam[6, 2] = cam[2, 7] = cam[2, 8] = 1.0
    assert crop_box(cam, 1 / 3) == Box(6, 1, 9, 4, cam_zero=False)   # peak (x=7, y=2)


def test_full_fraction_box_is_the_largest_square():
    assert crop_box(peak_map(4, 7, 6, 3), 1.0) == Box(3, 0, 7, 4, cam_zero=False)


def test_boxes_always_lie_inside_the_image_with_the_requested_side():
    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = rng.integers(1, 40, size=2)
        fraction = rng.uniform(0.01, 1.0)
        cam = rng.random((height, width))
        box = crop_box(cam, fraction)
        side = max(1, int(np.floor(fraction * min(height, width) + 0.5)))
        assert box.x1 - box.x0 == box.y1 - box.y0 == side
        assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height
        peak_y, peak_x = np.unravel_index(np.argmax(cam), cam.shape)
        assert box.x0 <= peak_x < box.x1 and box.y0 <= peak_y < box.y1


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_crop_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match="crop_fraction"):
        crop_box(np.ones((4, 4)), fraction)


def test_batched_boxes_equal_single_boxes_of_upsampled_cams(monkeypatch):
    # Tiny chunks force several chunks per image size.
    monkeypatch.setattr(gradcam, "_MAX_CHUNK_PIXELS", 5000)
    rng = np.random.default_rng(3)
    cams = rng.random((7, 4, 5)).astype(np.float32)
    cams[3] = 0
    heights = np.array([40, 75, 40, 13, 75, 40, 3])
    widths = np.array([60, 50, 60, 17, 50, 60, 5])
    table = crop_boxes(cams, heights, widths, crop_fraction=0.4)
    for i in range(len(cams)):
        expected = crop_box(upsample_cam(cams[i], (heights[i], widths[i])), 0.4)
        assert tuple(table.iloc[i]) == tuple(expected)
    assert table.cam_zero.tolist() == [False, False, False, True, False, False, False]


def test_upsample_keeps_constant_maps_and_batch_shape():
    cams = torch.stack([torch.ones(3, 4), torch.zeros(3, 4)])
    up = upsample_cam(cams, (30, 20))
    assert up.shape == (2, 30, 20)
    assert torch.allclose(up[0], torch.ones(30, 20)) and torch.equal(up[1], torch.zeros(30, 20))
    assert upsample_cam(cams[0], (5, 6)).shape == (5, 6)
