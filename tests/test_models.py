import numpy as np
import pytest
import torch

from neuron_concepts import embeddings, models, names
from neuron_concepts.errors import ConfigError, WeightsError


def test_model_tags_name_the_weights():
    assert names.model_tag("resnet50", "IMAGENET1K_V1") == "resnet50-IMAGENET1K_V1"
    assert names.model_tag("resnet50", "random") == "resnet50-random"
    assert names.model_tag("resnet50", "/ckpts/my_run.pth") == "resnet50-ckpt-my_run"
    assert names.model_tag("ViT-B-32", "openai") == "ViT-B-32-openai"


def test_random_target_is_seeded_and_exposes_layers():
    a = models.load_target("resnet18", "random", seed=3)
    b = models.load_target("resnet18", "random", seed=3)
    assert a.tag == "resnet18-random" and a.input_size == 224
    for (_, pa), (_, pb) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert torch.equal(pa, pb)
    assert isinstance(models.get_layer(a.module, "layer4.1.conv2"), torch.nn.Conv2d)
    with pytest.raises(ConfigError, match="no layer 'layer9'"):
        models.get_layer(a.module, "layer9")


def test_local_checkpoint_round_trip(tmp_path):
    source = models.load_target("resnet18", "random", seed=1)
    path = tmp_path / "finetuned.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.module.state_dict().items()}}, path)
    loaded = models.load_target("resnet18", str(path), seed=2)
    assert loaded.tag == "resnet18-ckpt-finetuned"
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(loaded.module(x), source.module(x))


def test_missing_weights_message_names_model_cache_and_key(tmp_path):
    with pytest.raises(WeightsError) as err:
        models.load_target("resnet18", "IMAGENET1K_V1", cache_dir=tmp_path)
    message = str(err.value)
    assert "resnet18 (IMAGENET1K_V1)" in message and str(tmp_path / "torchvision") in message
    assert "target.weights" in message and "weights=random" in message
    with pytest.raises(WeightsError, match="clip.eval.pretrained"):
        models.load_clip("ViT-B-32", "openai", cache_dir=tmp_path, key="clip.eval.pretrained")


def test_unknown_weights_tag_lists_the_choices():
    with pytest.raises(ConfigError, match="IMAGENET1K_V1"):
        models.load_target("resnet18", "IMAGENET9K", cache_dir="/nonexistent")


def test_text_context_cut_gives_the_full_context_embeddings():
    clip = models.load_clip("ViT-B-32", "random")
    assert embeddings.supports_context_cut(clip.module)
    texts = ["dog", "a photo of a very long and winding concept name", "red", ""] * 3
    cut = embeddings.encode_texts(clip, texts, batch_size=5, progress=False)
    with torch.inference_mode():
        full = torch.nn.functional.normalize(clip.module.encode_text(clip.tokenizer(texts)).float(), dim=-1)
    np.testing.assert_allclose(cut, full.numpy(), atol=1e-5)


def test_tokens_every_text_begins_with_run_once_and_give_the_full_context_embeddings():
    clip = models.load_clip("ViT-B-32", "random")
    assert embeddings.supports_shared_prefix(clip.module)
    words = ["dog", "very long and winding concept name", "red", "a"]
    prompts = [f"A photo of a {w}" for w in words]
    assert embeddings.shared_prefix_length(clip.tokenizer(prompts)) == 5  # start, "a photo of a"
    # A text that is another's beginning keeps its own end-of-text token.
    nested = ["a photo", "a photo of", "a photo of a dog"]
    assert embeddings.shared_prefix_length(clip.tokenizer(nested)) == 3
    got = np.concatenate([
        embeddings.encode_texts(clip, words, batch_size=3, template="A photo of a {}", progress=False),
        embeddings.encode_texts(clip, nested, progress=False),
        embeddings.encode_texts(clip, ["A photo of a"], progress=False),  # one text: all shared
    ])
    with torch.inference_mode():
        full = clip.module.encode_text(clip.tokenizer(prompts + nested + ["A photo of a"]))
    np.testing.assert_allclose(got, torch.nn.functional.normalize(full.float(), dim=-1).numpy(),
                               atol=1e-5)


def test_image_embeddings_are_normalised_and_batch_independent():
    clip = models.load_clip("ViT-B-32", "random")
    images = torch.randn(5, 3, 224, 224)
    one_batch = embeddings.encode_images(clip, [images], progress=False)
    split = embeddings.encode_images(clip, [images[:2], images[2:]], progress=False)
    np.testing.assert_allclose(np.linalg.norm(one_batch, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(one_batch, split, atol=1e-5)


def test_random_sentence_model_runs_offline():
    model = models.load_sentence_model("random")
    emb = model.encode(["a dog", "a cat"], normalize_embeddings=True)
    assert emb.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_loaders_seed_and_ask_for_deterministic_kernels():
    torch.use_deterministic_algorithms(False)
    models.load_target("resnet18", "random", seed=5)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    first = torch.rand(3)
    torch.manual_seed(99)
    models.load_target("resnet18", "random", seed=5)
    assert torch.equal(torch.rand(3), first)  # the loader reseeds: a job starts from one state


def test_two_runs_of_the_image_embedding_give_identical_bytes_on_cpu():
    images = torch.randn(6, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def run() -> bytes:
        clip = models.load_clip("ViT-B-32", "random", seed=1)
        return embeddings.encode_images(clip, [images[:4], images[4:]], progress=False).tobytes()

    assert run() == run()


def test_cpu_forward_stays_float32_whatever_autocast_says():
    clip = models.load_clip("ViT-B-32", "random")
    images = torch.randn(2, 3, 224, 224)
    plain = embeddings.encode_images(clip, [images], progress=False, autocast=False)
    asked = embeddings.encode_images(clip, [images], progress=False, autocast=True)
    assert plain.dtype == np.float32 and plain.tobytes() == asked.tobytes()
    target = models.load_target("resnet18", "random")
    assert not models.uses_channels_last(target.module, "cpu")
    assert models.uses_channels_last(target.module, "cuda")  # a CNN: channels-last on CUDA
    assert not models.uses_channels_last(clip.module.transformer, "cuda")
    assert target.module.conv1.weight.is_contiguous()  # CPU weights untouched


def test_autocast_is_kept_only_within_the_tolerance():
    """The decision of models.choose_autocast, run with CPU bfloat16 autocast (no GPU here)."""
    torch.manual_seed(0)
    small = torch.nn.Linear(16, 4)
    x = torch.randn(8, 16) * 1e-3   # outputs ~1e-3: bfloat16's error is far below 1e-3
    ok, outputs, difference = models.compare_precision(lambda: [small(x)], "cpu", torch.bfloat16, 1e-3)
    assert ok and difference <= 1e-3 and outputs[0].dtype == torch.float32
    assert torch.equal(outputs[0], small(x))  # the float32 outputs are returned
    big = torch.randn(8, 16) * 100   # outputs ~100: bfloat16 rounds by ~0.5
    ok, _, difference = models.compare_precision(lambda: [small(big)], "cpu", torch.bfloat16, 1e-3)
    assert not ok and difference > 1e-3
    # On the CPU the answer is always float32, with no second forward.
    calls = []
    use, out = models.choose_autocast(lambda: calls.append(1) or [small(x)], "cpu", requested=None)
    assert use is False and len(calls) == 1 and torch.equal(out[0], small(x))


def test_known_texts_with_the_same_tokens_are_copied_and_the_rest_embedded():
    from neuron_concepts.io import Embeddings

    clip = models.load_clip("ViT-B-32", "random")
    # Marker rows (not embeddings at all) show which rows were copied rather than computed.
    marker = np.eye(2, 512, dtype=np.float32)
    known = Embeddings(emb=marker, ids=np.array(["tinca tinca", "goldfish"]))
    texts = ["Tinca  tinca", "dog", "goldfish", "dog"]  # CLIP's tokenizer lower-cases, cleans spaces
    got = embeddings.encode_texts(clip, texts, batch_size=2, progress=False, known=known)
    np.testing.assert_array_equal(got[0], marker[0])
    np.testing.assert_array_equal(got[2], marker[1])
    direct = embeddings.encode_texts(clip, ["dog"], progress=False)[0]
    np.testing.assert_allclose(got[1], direct, atol=1e-5)
    np.testing.assert_array_equal(got[1], got[3])  # copies of a text get the same vector
    with pytest.raises(ValueError, match="do not fit"):
        embeddings.encode_texts(clip, texts, progress=False,
                                known=Embeddings(emb=marker[:, :10], ids=known.ids))


def test_open_clip_starts_without_transformers_and_gets_it_for_a_hugging_face_tower():
    import subprocess
    import sys

    code = ("import sys\n"
            "from neuron_concepts import models\n"
            "clip = models.load_clip('ViT-B-32', 'random')\n"
            "assert 'transformers' not in sys.modules, 'an OpenAI ViT imported transformers'\n"
            "import open_clip\n"
            "assert open_clip.hf_model.transformers is None\n"
            "models.enable_hf_text_tower('ViT-B-32')\n"
            "assert open_clip.hf_model.transformers is None\n"
            "models.enable_hf_text_tower('roberta-ViT-B-32')  # a Hugging Face text tower\n"
            "assert open_clip.hf_model.transformers is sys.modules['transformers']\n"
            "# the class open_clip's factory holds (bound before the reload) sees it too\n"
            "assert open_clip.model.HFTextEncoder.__init__.__globals__['transformers'] is not None\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
