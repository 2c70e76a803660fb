"""The GPT: parameter budget, init, RoPE, causality, generation with and without the KV cache."""

from __future__ import annotations

import math

import pytest
import torch

from wikigpt.errors import WikigptError
from wikigpt.model import GPT, GPTConfig, apply_rope, rope_tables
from wikigpt.train.checkpoint import load_model, save_model



pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = GPTConfig(vocab_size=256, block_size=32, n_layer=2, n_head=4, n_embd=64)


def tiny_model(seed: int = 0, config: GPTConfig = TINY) -> GPT:
    torch.manual_seed(seed)
    return GPT(config).eval()


def test_default_config_has_110m_params_with_per_group_table():
    with torch.device("meta"):
        model = GPT(GPTConfig())
    assert model.num_params() == 110_119_680
    assert model.param_groups() == {
        "embedding": 25_165_824,
        "attention": 28_311_552,
        "swiglu": 56_623_104,
        "norms": 19_200,
    }
    assert model.config.mlp_hidden == 2048


def test_swiglu_hidden_rounds_up_to_multiple_of_256():
    assert GPTConfig(n_embd=128, n_head=4).mlp_hidden == 512  # 341.3 -> 512
    assert GPTConfig(n_embd=1024, n_head=8).mlp_hidden == 2816  # 2730.7 -> 2816


def test_no_biases_tied_head_and_scaled_residual_init():
    config = GPTConfig(vocab_size=1024, block_size=32, n_layer=8, n_head=4, n_embd=256)
    model = tiny_model(config=config)
    assert model.lm_head.weight is model.wte.weight
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    assert model.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual = 0.02 / math.sqrt(2 * config.n_layer)
    for block in model.blocks:
        assert block.attn.proj.weight.std().item() == pytest.approx(residual, rel=0.1)
        assert block.mlp.down.weight.std().item() == pytest.approx(residual, rel=0.1)
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert torch.equal(block.attn_norm.weight, torch.ones(256))
    # RoPE tables are derived, never saved
    assert not any("rope" in k for k in model.state_dict())


def test_untrained_loss_is_near_log_vocab():
    config = GPTConfig(vocab_size=4096, block_size=64, n_layer=2, n_head=4, n_embd=64)
    model = tiny_model(config=config)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 4096, (4, 64), generator=g)
    targets = torch.randint(0, 4096, (4, 64), generator=g)
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(4096)) < 0.5


def test_targets_minus_one_are_ignored_and_no_targets_gives_last_logits():
    model = tiny_model()
    idx = torch.randint(0, 256, (2, 16))
    targets = torch.randint(0, 256, (2, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (2, 16, 256)
    masked = targets.clone()
    masked[:, 8:] = -1
    _, loss_masked = model(idx, masked)
    _, loss_half = model(idx[:, :8], targets[:, :8])
    torch.testing.assert_close(loss_masked, loss_half)
    last, none = model(idx)
    assert none is None and last.shape == (2, 1, 256)
    torch.testing.assert_close(last[:, 0], logits[:, -1])


def test_rope_scores_depend_only_on_offset():
    head_dim = 16
    cos, sin = rope_tables(head_dim, 64, 10000.0)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 1, head_dim, generator=g)
    k = torch.randn(1, 1, 1, head_dim, generator=g)

    def score(m: int, n: int) -> float:
        qm = apply_rope(q, cos[m : m + 1], sin[m : m + 1])
        kn = apply_rope(k, cos[n : n + 1], sin[n : n + 1])
        return float((qm * kn).sum())

    for m, n in [(5, 2), (9, 9), (3, 11)]:
        for shift in (1, 17, 40):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 3), abs=1e-4)  # but it does depend on the offset


def test_rope_pairs_dim_i_with_i_plus_half():
    cos, sin = rope_tables(8, 4, 10000.0)
    x = torch.zeros(1, 1, 1, 8)
    x[..., 1] = 1.0  # only dim 1 set: rotation must move it into dim 1 + 4 = 5 and nowhere else
    y = apply_rope(x, cos[3:4], sin[3:4])
    nonzero = set(torch.nonzero(y.flatten().abs() > 1e-6).flatten().tolist())
    assert nonzero == {1, 5}


def test_changing_a_future_token_never_changes_earlier_logits():
    model = tiny_model()
    idx = torch.randint(0, 256, (1, 24))
    logits, _ = model(idx, torch.zeros_like(idx))
    changed = idx.clone()
    changed[0, 15] = (changed[0, 15] + 1) % 256
    logits2, _ = model(changed, torch.zeros_like(idx))
    torch.testing.assert_close(logits2[:, :15], logits[:, :15], rtol=0, atol=1e-6)
    assert not torch.allclose(logits2[:, 15:], logits[:, 15:])


def test_cached_greedy_equals_uncached_greedy():
    model = tiny_model()
    prompt = torch.randint(0, 256, (3, 5))
    cached = model.generate(prompt, 25, temperature=0.0, use_cache=True)
    uncached = model.generate(prompt, 25, temperature=0.0, use_cache=False)
    assert cached.shape == (3, 30)
    assert torch.equal(cached, uncached)
    stream = list(model.generate_stream(prompt[0].tolist(), 25, temperature=0.0))
    assert stream == cached[0, 5:].tolist()


def test_cache_chunk_after_prefill_matches_full_forward():
    from wikigpt.model import KVCache

    model = tiny_model()
    idx = torch.randint(0, 256, (2, 20))
    full, _ = model(idx, torch.zeros_like(idx))
    cache = KVCache(model.config, 2, "cpu", torch.float32)
    model(idx[:, :8], cache=cache)
    with torch.no_grad():
        chunk, _ = model(idx[:, 8:], torch.zeros_like(idx[:, 8:]), cache=cache)  # 12-token chunk at offset 8
    torch.testing.assert_close(chunk, full[:, 8:], rtol=1e-4, atol=1e-5)
    assert cache.pos == 20


def test_generation_beyond_block_size_crops_context():
    model = tiny_model()
    prompt = torch.randint(0, 256, (1, 30))  # block_size is 32
    for use_cache in (True, False):
        out = model.generate(prompt, 50, temperature=1.0, top_k=20, use_cache=use_cache)
        assert out.shape == (1, 80)
        assert torch.equal(out[:, :30], prompt)


def test_stop_ids_end_generation():
    model = tiny_model()
    prompt = torch.randint(0, 256, (1, 4))
    free = model.generate(prompt, 10, temperature=0.0)
    stop = int(free[0, 7])  # the 4th generated token
    first = free[0, 4:].tolist().index(stop)
    stopped = model.generate(prompt, 10, temperature=0.0, stop_ids=(stop,))
    assert stopped[0, 4:].tolist() == free[0, 4 : 4 + first + 1].tolist()
    stream = list(model.generate_stream(prompt[0].tolist(), 10, temperature=0.0, stop_ids=[stop]))
    assert stream == free[0, 4 : 4 + first].tolist()  # the stop token itself is not yielded


def test_stopped_rows_are_padded_with_their_stop_token():
    model = tiny_model()
    prompt = torch.randint(0, 256, (4, 3))
    free = model.generate(prompt, 12, temperature=0.0)
    stop = int(free[0, 4])
    out = model.generate(prompt, 12, temperature=0.0, stop_ids=(stop,))
    row = out[0, 3:].tolist()
    first = row.index(stop)
    assert all(t == stop for t in row[first:])


def test_sampling_filters():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]])
    g = torch.Generator().manual_seed(0)
    assert GPT.sample_next(logits, temperature=0.0).item() == 1
    draws = {GPT.sample_next(logits, 1.0, top_k=2, generator=g).item() for _ in range(200)}
    assert draws == {1, 3}
    # probabilities ~ [.03, .64, .09, .23, .01]: top_p 0.8 keeps {1, 3}; top_p 0.5 keeps only 1
    draws = {GPT.sample_next(logits, 1.0, top_p=0.8, generator=g).item() for _ in range(200)}
    assert draws == {1, 3}
    draws = {GPT.sample_next(logits, 1.0, top_p=0.5, generator=g).item() for _ in range(50)}
    assert draws == {1}
    draws = {GPT.sample_next(logits, 1.0, generator=g).item() for _ in range(500)}
    assert len(draws) >= 4  # plain sampling reaches low-probability tokens too


def test_save_and_load_model_round_trip(tmp_path):
    model = tiny_model()
    save_model(tmp_path / "base", model)
    assert sorted(p.name for p in (tmp_path / "base").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "base")
    assert loaded.config == model.config
    assert loaded.lm_head.weight is loaded.wte.weight
    idx = torch.randint(0, 256, (2, 10))
    torch.testing.assert_close(loaded(idx)[0], model(idx)[0], rtol=0, atol=0)


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(WikigptError, match="config.json"):
        load_model(tmp_path)
    save_model(tmp_path / "m", tiny_model())
    (tmp_path / "m" / "config.json").write_text('{"vocab_size": 256, "n_layer": 3, "block_size": 32, "n_head": 4, "n_embd": 64}')
    with pytest.raises(WikigptError, match="model.safetensors"):
        load_model(tmp_path / "m")
