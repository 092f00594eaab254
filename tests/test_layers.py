"""Neurons of any layer (neuron_concepts.layers): reductions, layouts, inspection, Grad-CAM.

Known answers on constructed tensors, and tiny real models built by their own libraries
(timm ViT and Swin, torchvision ResNet) checked against explicit computations.
"""

from __future__ import annotations

import pytest
import torch

from neuron_concepts import activations, gradcam, layers, models, names
from neuron_concepts.errors import ConfigError
from neuron_concepts.layers import LayerNeurons

# Tiny timm models through target.kwargs, as the workflow tests configure them.
TINY_VIT = dict(name="vit_tiny_patch16_224", source="timm",
                kwargs=dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2))
TINY_SWIN = dict(name="swin_tiny_patch4_window7_224", source="timm",
                 kwargs=dict(img_size=64, embed_dim=24, depths=(1, 1), num_heads=(1, 2), window_size=4))


def build(spec: dict) -> models.BuiltTarget:
    torch.manual_seed(0)
    built = models.build_target(spec["name"], spec["source"], spec["kwargs"])
    built.module.eval()
    return built


def inspected(spec: dict) -> layers.Inspection:
    return layers.inspect_target(spec, use_cache=False)


# ---------------------------------------------------------------- reductions: known answers


def neurons(layout: str, reduction: str | None, k: int, **extra) -> LayerNeurons:
    return LayerNeurons("x", layout, reduction, k, **extra)


@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_nhwc_reduction_equals_nchw_of_the_permuted_tensor(reduction):
    nchw = torch.randn(2, 5, 3, 4)
    first = layers.reduce_output(nchw, neurons("nchw", reduction, 5))
    last = layers.reduce_output(nchw.permute(0, 2, 3, 1).contiguous(), neurons("nhwc", reduction, 5))
    torch.testing.assert_close(first, last)
    expected = nchw.flatten(2).mean(-1) if reduction == "mean" else nchw.flatten(2).max(-1).values
    torch.testing.assert_close(first, expected)


def test_token_reductions():
    tokens = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)  # [B, T=4, K=3]
    tokens[:, 0] = 100.0  # the class token dominates any max it takes part in
    cls = layers.reduce_output(tokens, neurons("tokens", "cls", 3, prefix_tokens=1))
    torch.testing.assert_close(cls, torch.full((2, 3), 100.0))
    mean = layers.reduce_output(tokens, neurons("tokens", "mean", 3, prefix_tokens=1))
    torch.testing.assert_close(mean, tokens[:, 1:].sum(1) / 3)  # skips the class token
    peak = layers.reduce_output(tokens, neurons("tokens", "max", 3, prefix_tokens=1))
    torch.testing.assert_close(peak, tokens[:, 3])  # the last patch token, not the class token
    two_prefix = layers.reduce_output(tokens, neurons("tokens", "mean", 3, prefix_tokens=2))
    torch.testing.assert_close(two_prefix, tokens[:, 2:].mean(1))  # a register token skipped too
    sequence_first = layers.reduce_output(tokens.transpose(0, 1), neurons(
        "tokens", "mean", 3, prefix_tokens=1, sequence_first=True))
    torch.testing.assert_close(sequence_first, mean)


def test_vector_outputs_and_tuple_elements():
    x = torch.randn(2, 7)
    assert layers.reduce_output(x, neurons("vector", None, 7)) is x
    assert layers.reduce_output((x, torch.zeros(1)), neurons("vector", None, 7)) is x
    assert layers.reduce_output({"a": torch.zeros(1), "b": x}, neurons("vector", None, 7, element="b")) is x
    with pytest.raises(ConfigError, match=r"target\.layer_options\.x\.output.*keys \['a', 'b'\]"):
        layers.select_element({"a": x, "b": x}, None, "x")
    with pytest.raises(ConfigError, match="cls needs a class token"):
        layers.reduce_output(torch.zeros(2, 4, 3), neurons("tokens", "cls", 3, prefix_tokens=0))


def test_to_map_lays_patch_tokens_out_row_by_row():
    tokens = torch.randn(2, 1 + 6, 5)  # class token + a 2 x 3 patch grid
    grid = layers.to_map(tokens, neurons("tokens", "mean", 5, prefix_tokens=1, grid=(2, 3)))
    assert grid.shape == (2, 5, 2, 3)
    torch.testing.assert_close(grid[:, :, 1, 0], tokens[:, 1 + 3])  # row 1, column 0: patch 3
    nhwc = torch.randn(2, 4, 6, 5)
    torch.testing.assert_close(layers.to_map(nhwc, neurons("nhwc", "mean", 5)), nhwc.permute(0, 3, 1, 2))
    with pytest.raises(ConfigError, match="make no square grid"):
        layers.to_map(torch.zeros(1, 1 + 6, 5), neurons("tokens", "mean", 5, prefix_tokens=1))


# ---------------------------------------------------------------- layouts


def test_layout_comes_from_the_declared_channel_count():
    assert layers.detect_layout((3, 8, 5, 5), 3, "a", channels=8) == ("nchw", 8, False)
    assert layers.detect_layout((3, 5, 5, 8), 3, "a", channels=8) == ("nhwc", 8, False)
    assert layers.detect_layout((3, 17, 32), 3, "a") == ("tokens", 32, False)
    assert layers.detect_layout((17, 3, 32), 3, "a") == ("tokens", 32, True)  # [T, B, K]
    assert layers.detect_layout((3, 8, 8, 8), 3, "a", channels=8, module_type="Conv2d")[0] == "nchw"
    assert layers.detect_layout((3, 8, 8, 8), 3, "a", channels=8, declared="nhwc")[0] == "nhwc"


@pytest.mark.parametrize("shape, channels, match", [
    ((3, 8, 8, 8), 8, r"layer 'blk' \(Block\) gives shape \(3, 8, 8, 8\) and declares 8 channels"),
    ((3, 6, 5, 7), None, r"declares no channel count"),
    ((3, 2, 2, 2, 2), 2, r"shape \(3, 2, 2, 2, 2\), which has no neuron axis"),
    ((4, 5), 5, r"its first axis is not the batch"),
])
def test_an_output_that_cannot_become_neurons_names_layer_shape_and_key(shape, channels, match):
    with pytest.raises(ConfigError, match=match) as error:
        layers.detect_layout(shape, 3, "blk", channels=channels, module_type="Block")
    assert "target.layer_options.blk.layout" in str(error.value)


# ---------------------------------------------------------------- inspecting real models


def test_resnet_layers_final_layer_and_gradcam_layer():
    seen = inspected(dict(name="resnet18", source="torchvision", kwargs={}))
    assert (seen.outputs["layer4"].layout, seen.outputs["layer4"].neurons) == ("nchw", 512)
    assert seen.outputs["layer4"].image_shape == (512, 7, 7)
    assert (seen.outputs["fc"].layout, seen.outputs["fc"].neurons) == ("vector", 1000)
    assert seen.outputs["layer4.1.relu"].layout == "nchw"  # follows its input: no channel count
    assert (seen.final_layer, seen.gradcam_layer) == ("fc", "layer4")
    assert [layers.layer_neurons(seen, p).name for p in ("layer4", "fc")] == ["layer4-mean", "fc"]


def test_vit_tokens_class_token_and_gradcam_layer():
    seen = inspected(TINY_VIT)
    assert seen.prefix_tokens == 1 and seen.grid == (4, 4)
    block = seen.outputs["blocks.1"]
    assert (block.layout, block.neurons, block.image_shape) == ("tokens", 32, (17, 32))
    assert (seen.final_layer, seen.gradcam_layer) == ("head", "blocks.1.norm1")
    cls = layers.layer_neurons(seen, "blocks.1", {"reduction": "cls"})
    assert (cls.name, cls.prefix_tokens, cls.grid) == ("blocks.1-cls", 1, (4, 4))
    assert layers.layer_neurons(seen, "blocks.0", None, {"tokens": "max"}).name == "blocks.0-max"
    with pytest.raises(ConfigError, match=r"target\.layer_options\.head\.reduction: 'mean' does not apply"):
        layers.layer_neurons(seen, "head", {"reduction": "mean"})
    with pytest.raises(ConfigError, match=r"no layer 'blocks\.7'.*top-level layers are \[.*'blocks'"):
        layers.layer_neurons(seen, "blocks.7")


def test_swin_stages_are_channels_last():
    seen = inspected(TINY_SWIN)
    assert (seen.outputs["layers.1"].layout, seen.outputs["layers.1"].image_shape) == ("nhwc", (8, 8, 48))
    assert seen.outputs["patch_embed.proj"].layout == "nchw"  # the conv before the permute
    assert (seen.final_layer, seen.gradcam_layer) == ("head.fc", "layers.1.blocks.0.norm1")
    # Window attention folds windows into the batch axis: no neurons per image there.
    assert seen.outputs["layers.0.blocks.0.attn"].layout is None
    with pytest.raises(ConfigError, match="first axis is not the batch"):
        layers.layer_neurons(seen, "layers.0.blocks.0.attn")


def test_activations_of_a_vit_equal_its_forward_features():
    built = build(TINY_VIT)
    seen = inspected(TINY_VIT)
    specs = [layers.layer_neurons(seen, "norm", {"reduction": r}) for r in ("cls", "mean")]
    specs.append(layers.layer_neurons(seen, "head"))
    images = torch.randn(5, 3, 32, 32)
    acts = activations.layer_activations(built.module, specs, [images[:3], images[3:]], progress=False)
    with torch.no_grad():
        features = built.module.forward_features(images)  # the final norm's tokens [B, 17, 32]
        logits = built.module(images)
    torch.testing.assert_close(torch.from_numpy(acts["norm-cls"]), features[:, 0])
    torch.testing.assert_close(torch.from_numpy(acts["norm-mean"]), features[:, 1:].mean(1))
    torch.testing.assert_close(torch.from_numpy(acts["head"]), logits, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- Grad-CAM of transformers


def explicit_grad_cam(model, layer, images, to_nhwc_grid):
    """Textbook Grad-CAM: full autograd from a differentiable input, the layer's output kept
    in the graph; ``to_nhwc_grid`` lays the output out as ``[B, h, w, K]``."""
    kept = []
    handle = layer.register_forward_hook(lambda _m, _i, out: kept.append(out))
    try:
        with torch.enable_grad():
            logits = model(images.clone().requires_grad_(True))
            predicted = logits.argmax(1)
            (grad,) = torch.autograd.grad(logits.gather(1, predicted[:, None]).sum(), kept[0])
    finally:
        handle.remove()
    acts, grads = to_nhwc_grid(kept[0].detach()), to_nhwc_grid(grad)
    weights = grads.mean(dim=(1, 2))                                  # [B, K]
    cams = torch.relu((acts * weights[:, None, None, :]).sum(-1))     # [B, h, w]
    peak = cams.flatten(1).max(1).values.clamp_min(1e-30)[:, None, None]
    return torch.where(cams.flatten(1).max(1).values[:, None, None] > 0, cams / peak, cams), predicted


def test_grad_cam_of_a_vit_equals_explicit_autograd():
    built = build(TINY_VIT)
    seen = inspected(TINY_VIT)
    spec = layers.layer_neurons(seen, seen.gradcam_layer)
    images = torch.randn(4, 3, 32, 32)
    layer = built.module.get_submodule(spec.layer)
    cams, predicted = gradcam.grad_cam(built.module, layer, images, spec)
    expected, expected_pred = explicit_grad_cam(
        built.module, layer, images, lambda t: t[:, 1:].reshape(t.shape[0], 4, 4, t.shape[2]))
    assert cams.shape == (4, 4, 4)
    assert predicted.tolist() == expected_pred.tolist()
    torch.testing.assert_close(cams, expected, atol=1e-5, rtol=0)
    assert (cams.flatten(1).max(1).values == 1).all()  # a random ViT still has evidence somewhere


def test_grad_cam_of_a_channels_last_swin_equals_explicit_autograd():
    built = build(TINY_SWIN)
    seen = inspected(TINY_SWIN)
    spec = layers.layer_neurons(seen, seen.gradcam_layer)
    assert spec.layout == "nhwc"
    images = torch.randn(2, 3, 64, 64)
    layer = built.module.get_submodule(spec.layer)
    cams, _ = gradcam.grad_cam(built.module, layer, images, spec)
    expected, _ = explicit_grad_cam(built.module, layer, images, lambda t: t)
    assert cams.shape == (2, 8, 8)
    torch.testing.assert_close(cams, expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- names and the command


def test_layer_names_round_trip():
    for layer, reduction in (("layer4", "mean"), ("blocks.11", "cls"), ("fc", None), ("head.fc", None)):
        name = names.layer_name(layer, reduction)
        assert names.parse_layer_name(name) == (layer, reduction)
    with pytest.raises(ValueError):
        names.layer_name("layer4", "sum")
    with pytest.raises(ValueError):
        names.parse_layer_name("layer4-median")


def test_neurons_round_trip_through_params():
    spec = LayerNeurons("blocks.1", "tokens", "cls", 32, 1, False, None, (4, 4))
    assert LayerNeurons.from_dict(spec.to_dict()) == spec


def test_layers_command_lists_paths_shapes_and_neurons(capsys):
    assert layers.main(["resnet18", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("layer4 "))
    assert row == ["layer4", "Sequential", "[512,", "7,", "7]", "nchw", "512", "mean,max", "layer4-mean"]
    assert "final layer (target.final_layer: auto): fc" in out
    assert "layer4.0" not in out  # --depth 1: top-level modules only
    assert layers.main(["no_such_model"]) == 2
    assert "torchvision has no model 'no_such_model'" in capsys.readouterr().err


def test_target_layers_resolves_auto_and_checks_options(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CONCEPTS_CACHE", str(tmp_path))
    config = {"target": {**TINY_VIT, "layers": ["blocks.0", "blocks.1", "head"], "final_layer": "auto",
                         "layer_options": {"blocks.1": {"reduction": "cls"}}},
              "gradcam": {"layer": "auto"}}
    resolved = layers.target_layers(config)
    assert [n.name for n in resolved.neurons] == ["blocks.0-mean", "blocks.1-cls", "head"]
    assert resolved.final_layer.layer == "head" and resolved.gradcam.layer == "blocks.1.norm1"
    assert list(tmp_path.glob("layers/*.json"))  # the inspection is cached
    assert layers.target_layers(config) == resolved  # and read back identically
    config["target"]["layer_options"] = {"blocks.9": {"reduction": "cls"}}
    with pytest.raises(ConfigError, match=r"target\.layer_options names \['blocks\.9'\]"):
        layers.target_layers(config)


def test_open_clip_image_tower_as_target(monkeypatch, tmp_path):
    """CLIP-Dissect's "CLIP as target": the tower's tokens are neurons, it has no classifier,
    so an evaluation configured on it stops before any job with the key to change."""
    from conftest import REPO
    from neuron_concepts import settings

    spec = dict(name="tiny-clip", source="open_clip", kwargs={},
                model_config=str(REPO / "tests" / "data" / "tiny-clip.json"))
    seen = inspected(spec)
    assert (seen.prefix_tokens, seen.grid, seen.final_layer) == (1, (4, 4), None)
    assert seen.gradcam_layer == "transformer.resblocks.1.ln_1"
    assert layers.layer_neurons(seen, "transformer.resblocks.1", {"reduction": "cls"}).name == \
        "transformer.resblocks.1-cls"
    target = models.load_target("tiny-clip", "random", "open_clip", model_config=spec["model_config"])
    assert target.input_size == 64 and target.class_names is None
    monkeypatch.setenv("NEURON_CONCEPTS_CACHE", str(tmp_path))
    config = {"target": {**spec, "layers": ["transformer.resblocks.1"], "final_layer": "auto"},
              "gradcam": {"layer": "auto"},
              "evaluation": {"probe_sets": ["demo"], "concept_sets": ["words"]}}
    resolved = layers.target_layers(config)
    assert resolved.final_layer is None and resolved.neurons[0].name == "transformer.resblocks.1-mean"
    with pytest.raises(ConfigError, match="tiny-clip has no classifier layer.*evaluation.probe_sets: \\[\\]"):
        settings.check_target_layers(config, None, None)


def test_patch_embedding_tokens_have_no_class_token_to_skip():
    seen = inspected(TINY_VIT)
    patches = layers.layer_neurons(seen, "patch_embed")  # [B, 16, 32]: before the class token
    assert (patches.prefix_tokens, patches.grid) == (0, (4, 4))
    with pytest.raises(ConfigError, match="cls needs a class token, and layer 'patch_embed' has none"):
        layers.layer_neurons(seen, "patch_embed", {"reduction": "cls"})


def test_planning_from_a_cached_inspection_imports_no_torch(tmp_path):
    """The workflow resolves layers at every plan; once a model is inspected, that is a JSON
    read, so a no-op rerun does not pay torch's import."""
    import json
    import subprocess
    import sys

    config = {"target": {**TINY_VIT, "layers": ["blocks.1", "head"]}, "gradcam": {"layer": "auto"}}
    program = ("import json, sys\nfrom neuron_concepts import layers\n"
               f"resolved = layers.target_layers(json.loads({json.dumps(config)!r}))\n"
               "print([n.name for n in resolved.neurons], 'torch' in sys.modules)\n")
    env = {**__import__("os").environ, "NEURON_CONCEPTS_CACHE": str(tmp_path)}
    first, second = (subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                                    env=env, check=True).stdout.strip() for _ in range(2))
    assert first == "['blocks.1-mean', 'head'] True"  # the first plan builds the model
    assert second == "['blocks.1-mean', 'head'] False"
