"""The double-branch U-Net, the classifier and the configuration."""

from __future__ import annotations

import re

import pytest
import torch

from model.diffusion.av import AV, over_av
from model.diffusion.classifier import AVClassifier
from model.diffusion.config import (
    DiffusionConfig,
    classifier_preset,
    caption_index,
    load_config,
    preset,
    save_config,
)
from model.diffusion.unet import (
    AudioSelfAttention,
    AVUNet,
    CrossModalAttention,
    audio_branch_only,
    audio_only_parameters,
    patch_audio,
    patch_video,
    rotate_positions,
    unpatch_audio,
    unpatch_video,
)


def _batch(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return AV(
        torch.randn(b, cfg.frames, 3, cfg.image_size, cfg.image_size, generator=g),
        torch.randn(b, 1, cfg.audio_samples, generator=g),
    )


def test_shapes_through_both_branches() -> None:
    cfg = preset("tiny").unet
    net = AVUNet(cfg)
    x = _batch(cfg)
    eps = net(x, torch.tensor([0, 999]), torch.tensor([0, 2]))
    assert eps.video.shape == (2, 4, 3, 16, 16)
    assert eps.audio.shape == (2, 1, 4000)


def test_patching_is_lossless() -> None:
    x = _batch(preset("tiny").unet)
    assert torch.equal(unpatch_video(patch_video(x.video, 2), 2), x.video)
    assert torch.equal(unpatch_audio(patch_audio(x.audio, 20), 20), x.audio)


def test_gradients_reach_both_branches_and_cross_attention() -> None:
    torch.manual_seed(0)
    net = AVUNet(preset("tiny").unet)
    # zero-initialised output layers would block gradients at init: give them small values
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    x = _batch(net.cfg)
    eps = net(x, torch.tensor([10, 500]), torch.tensor([1, 2]))
    (eps.video.pow(2).mean() + eps.audio.pow(2).mean()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    names = [n for n, _ in net.named_parameters()]
    assert any("video" in n for n in names) and any(".audio." in n for n in names)
    assert any(isinstance(m, CrossModalAttention) for m in net.modules())


def test_cross_attention_couples_the_branches() -> None:
    torch.manual_seed(0)
    cfg = preset("tiny").unet
    attn = CrossModalAttention(16, cfg)
    torch.nn.init.normal_(attn.out_video.weight, std=0.1)
    torch.nn.init.normal_(attn.out_audio.weight, std=0.1)
    v = torch.randn(1, 16, 4, 8, 8)
    a = torch.randn(1, 16, 200)
    out1 = attn(AV(v, a))
    out2 = attn(AV(v, a + 1.0 * torch.randn_like(a)))
    assert not torch.allclose(out1.video, out2.video)  # video output depends on the audio input


def test_classifier_logits() -> None:
    config = classifier_preset("tiny")
    clf = AVClassifier(config)
    logits = clf(_batch(config.unet), torch.tensor([3, 7]))
    assert logits.shape == (2, 2)


def test_config_json_round_trip(tmp_path) -> None:
    for name in ("paper", "small", "tiny"):
        config = preset(name)
        save_config(config, tmp_path / "config.json")
        assert load_config(tmp_path) == config
    clf = classifier_preset("small")
    save_config(clf, tmp_path / "config.json")
    assert load_config(tmp_path) == clf


def test_config_validates() -> None:
    with pytest.raises(ValueError):
        DiffusionConfig(captions=("A man", "", "x"))
    with pytest.raises(ValueError):
        preset("huge")


def test_caption_index() -> None:
    assert caption_index("") == 0
    assert caption_index("A man is talking") == 1
    assert caption_index("a WOMAN is talking") == 2
    assert caption_index("an old man speaks") == 1
    assert caption_index("female presenter") == 2
    with pytest.raises(ValueError, match="not understood"):
        caption_index("a dog barks")
    with pytest.raises(ValueError, match="ambiguous"):
        caption_index("a man and a woman")


def test_over_av_maps_once_per_modality() -> None:
    @over_av
    def double(x, k):
        return x * k

    pair = AV(torch.ones(1, 2), torch.ones(1, 3))
    out = double(pair, 2.0)
    assert torch.equal(out.video, 2 * torch.ones(1, 2)) and torch.equal(out.audio, 2 * torch.ones(1, 3))
    assert torch.equal((pair + pair * 3 - 1).audio, 3 * torch.ones(1, 3))


def _old_weights_into(**change):
    """A tiny network with random non-zero weights, loaded into one built with ``change`` to its
    config: (new network, missing keys, unexpected keys, (old output, new output) on one batch)."""
    import dataclasses

    torch.manual_seed(0)
    cfg = preset("tiny").unet
    plain = AVUNet(cfg)
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.02 * torch.randn_like(p))
    changed = AVUNet(dataclasses.replace(cfg, **change))
    missing, unexpected = changed.load_state_dict(plain.state_dict(), strict=False)
    x, t, c = _batch(cfg), torch.tensor([3, 900]), torch.tensor([0, 1])
    return changed, missing, unexpected, (plain(x, t, c), changed(x, t, c))


def test_position_embedding_starts_as_a_no_op_and_learns() -> None:
    """Zero at the start: a network given it behaves as the one without, so old weights fine-tune into it."""
    with_pos, missing, unexpected, (a, b) = _old_weights_into(position_embedding=True)
    assert missing == ["encoder.video_position"] and not unexpected
    assert with_pos.encoder.video_position.shape == (1, with_pos.cfg.base_channels, 1, 8, 8)  # 16x16 patched by 2
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)
    (b.video.pow(2).mean()).backward()
    assert with_pos.encoder.video_position.grad.abs().sum() > 0
    assert preset("small").unet.position_embedding and not preset("paper").unet.position_embedding


def test_audio_self_attention_starts_as_a_no_op_then_sees_the_whole_chunk() -> None:
    """Old weights load into the network with it (new keys only) and give the same output; once
    trained, the audio output at one end depends on the input at the other, which the convolutions
    and the +-1 frame cross-attention of the tiny config cannot reach."""
    with_attn, missing, unexpected, (a, b) = _old_weights_into(audio_self_attention=True)
    assert missing and all(".audio_self." in k for k in missing) and not unexpected
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)

    block = AudioSelfAttention(32, with_attn.cfg)
    torch.nn.init.normal_(block.out.weight, std=0.1)
    audio = torch.randn(1, 32, 400, requires_grad=True)
    block(audio)[0, :, -1].sum().backward()
    assert audio.grad[0, :, 0].abs().sum() > 0  # the last position reads the first


def test_rotary_positions_depend_on_distance_only() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    seq_q, seq_k = q.expand(1, 1, 50, 16), k.expand(1, 1, 50, 16)
    scores = rotate_positions(seq_q) @ rotate_positions(seq_k).transpose(-1, -2)  # [1, 1, 50, 50]
    assert torch.allclose(scores[0, 0, 3, 10], scores[0, 0, 30, 37], atol=1e-4)  # same distance, same score
    assert not torch.allclose(scores[0, 0, 3, 10], scores[0, 0, 3, 4], atol=1e-4)
    assert torch.allclose(rotate_positions(seq_q).norm(dim=-1), seq_q.norm(dim=-1), atol=1e-5)  # a rotation


def test_audio_self_attention_config() -> None:
    import dataclasses

    cfg = dataclasses.replace(preset("small").unet, audio_self_attention=True)
    assert DiffusionConfig.from_dict(DiffusionConfig(unet=cfg).to_dict()).unet.audio_self_attention
    assert not preset("paper").unet.audio_self_attention  # the paper's audio branch stays as published
    with pytest.raises(ValueError, match="even head widths"):
        dataclasses.replace(
            preset("tiny").unet, base_channels=27, norm_groups=3, head_channels=27, audio_self_attention=True
        )


# the audio branch as parameter names: the audio half of every block, the audio stem, head and
# self-attention, and the audio-queries-video half of each cross-attention (the rule the network's
# structure must keep; shipped weights and resumed optimizer state depend on it)
AUDIO_BRANCH_NAMES = re.compile(r"(^|\.)(audio|audio_in|audio_out|audio_self|q_audio|kv_video|out_audio)\.")


@pytest.mark.parametrize("name", ["tiny", "tiny-ref", "small", "small-mel-ref"])
def test_the_audio_branch_is_collected_from_the_structure(name) -> None:
    net = AVUNet(preset(name).unet)
    names = {id(p): n for n, p in net.named_parameters()}
    picked = [names[id(p)] for p in audio_only_parameters(net)]
    assert picked == [n for n, _ in net.named_parameters() if AUDIO_BRANCH_NAMES.search(n)]  # same set, same order
    assert not any("kv_audio" in n or "norm_audio" in n or n.startswith(("embed.", "reference.")) for n in picked)


def _awake_net(name: str = "tiny") -> AVUNet:
    torch.manual_seed(0)
    net = AVUNet(preset(name).unet)
    with torch.no_grad():
        for p in net.parameters():  # zero-initialised outputs would hide what reaches what
            p.normal_(0, 0.05)
    return net


def test_no_video_runs_the_audio_branch_alone() -> None:
    net = _awake_net("tiny-ref")
    cfg = net.cfg
    x = _batch(cfg)
    t, caption = torch.tensor([5, 600]), torch.tensor([1, 0])
    out = net(AV(None, x.audio), t, caption)
    assert out.video is None and torch.equal(out.audio, net.forward_audio(x.audio, t, caption))
    assert not torch.allclose(out.audio, net(x, t, caption).audio, atol=1e-4)  # the video matters when given
    with pytest.raises(ValueError, match="no reference"):
        net(AV(None, x.audio), t, caption, reference=torch.zeros(2, 3, cfg.image_size, cfg.image_size))


def test_branches_apart_changes_gradients_not_outputs() -> None:
    """``branches_apart``: the same outputs; the audio loss reaches the audio branch only through
    the audio branch (no gradient flows through the video features), as ``audio_branch_only`` does."""
    net = _awake_net()
    x, t, caption = _batch(net.cfg), torch.tensor([5, 600]), torch.tensor([1, 2])
    audio = audio_only_parameters(net)
    keep = {id(p) for p in audio}
    for p in net.parameters():
        p.requires_grad_(id(p) in keep)

    def grads(**kwargs):
        net.zero_grad(set_to_none=True)
        out = net(x, t, caption, **kwargs)
        out.audio.square().mean().backward()
        return out, [p.grad.clone() for p in audio]

    joint, g_joint = grads()
    apart, g_apart = grads(branches_apart=True)
    assert torch.equal(joint.video, apart.video) and torch.equal(joint.audio, apart.audio)
    assert joint.video.requires_grad and not apart.video.requires_grad
    assert any(not torch.allclose(a, b) for a, b in zip(g_joint, g_apart))

    trainable = audio_branch_only(net)  # what model/diffusion/train.py calls: the same parameters, frozen alike
    assert [id(p) for p in trainable] == [id(p) for p in audio]
    assert all(p.requires_grad == (id(p) in keep) for p in net.parameters())
    audio_branch_only(net, False)
    assert all(p.requires_grad for p in net.parameters())
    _, g_undone = grads()
    assert all(torch.equal(a, b) for a, b in zip(g_joint, g_undone))
