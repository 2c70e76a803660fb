"""SFT data generation (grounded, deterministic, split by article), user JSONL, and SFT training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wikigpt.data.shards import ShardWriter
from wikigpt.errors import WikigptError
from wikigpt.sft_data import (
    SftDataConfig,
    article_conversations,
    build_sft_data,
    is_val_article,
    iter_user_conversations,
    parse_article,
    read_sft_split,
    split_sentences,
)

ARTICLE = (
    "Veloria is a coastal city in the kingdom of Andar. It was founded in 812 by fishermen. "
    "The city is known for its blue harbour.\n"
    "History\n"
    "The first settlers arrived from the northern islands. They built a wooden fort on the hill.\n"
    "Economy\n"
    "Fishing and salt trade dominate the economy of Veloria. The port ships salt to the capital.\n"
    "* A list item that is not an answer\n"
)


def make_corpus(path: Path, n: int = 40) -> Path:
    with ShardWriter(path, rows_per_shard=15) as w:
        for i in range(n):
            text = ARTICLE.replace("Veloria", f"Town{i}")
            w.write({"id": 1000 + i, "title": f"Town{i}", "text": text})
    return path


def test_parse_article_finds_lead_and_sections():
    art = parse_article(1, "Veloria", ARTICLE)
    assert art.lead == [ARTICLE.splitlines()[0]]
    assert [h for h, _ in art.sections] == ["History", "Economy"]
    assert art.sections[1][1] == ["Fishing and salt trade dominate the economy of Veloria. The port ships salt to the capital."]


def test_split_sentences_latin_and_cjk():
    assert split_sentences("It was founded in 812. The city is blue. ok") == ["It was founded in 812.", "The city is blue. ok"]
    assert split_sentences("東京は首都である。人口は多い。") == ["東京は首都である。", "人口は多い。"]


def test_conversations_are_grounded_and_deterministic():
    cfg = SftDataConfig(multi_turn_fraction=1.0)
    art = parse_article(7, "Veloria", ARTICLE)
    convs = article_conversations(art, cfg)
    assert convs == article_conversations(parse_article(7, "Veloria", ARTICLE), cfg)
    kinds = [c["kind"] for c in convs]
    assert kinds == ["what_is", "tell_me", "section", "section", "multi_turn"]
    by_kind = {c["kind"]: c["messages"] for c in convs}
    assert "Veloria" in by_kind["what_is"][0]["content"]
    assert by_kind["what_is"][1]["content"] == "Veloria is a coastal city in the kingdom of Andar. It was founded in 812 by fishermen."
    assert by_kind["tell_me"][1]["content"] == ARTICLE.splitlines()[0]
    section_answers = {c["messages"][1]["content"] for c in convs if c["kind"] == "section"}
    assert section_answers == {ARTICLE.splitlines()[2], ARTICLE.splitlines()[4]}
    multi = by_kind["multi_turn"]
    assert [m["role"] for m in multi] == ["user", "assistant"] * 3
    # Every answer is text from the article itself.
    for c in convs:
        for m in c["messages"][1::2]:
            assert m["content"] in ARTICLE
    assert all(c["article_id"] == 7 and c["source"] == "wiki" for c in convs)


def test_stub_article_gives_no_questions():
    assert article_conversations(parse_article(1, "Stub", "Tiny."), SftDataConfig()) == []


def test_build_splits_by_article_and_is_reproducible(tmp_path):
    corpus = make_corpus(tmp_path / "clean")
    cfg = SftDataConfig(val_fraction=0.25)
    meta = build_sft_data(corpus, tmp_path / "sft", cfg)
    first = {s: (tmp_path / "sft" / f"{s}.jsonl").read_bytes() for s in ("train", "val")}
    build_sft_data(corpus, tmp_path / "sft", cfg)
    assert {s: (tmp_path / "sft" / f"{s}.jsonl").read_bytes() for s in ("train", "val")} == first
    train_ids = {c["article_id"] for c in read_sft_split(tmp_path / "sft", "train")}
    val_ids = {c["article_id"] for c in read_sft_split(tmp_path / "sft", "val")}
    assert train_ids and val_ids and not (train_ids & val_ids)
    assert val_ids == {1000 + i for i in range(40) if is_val_article(1000 + i, 0.25)}
    assert meta["train"]["articles"] == len(train_ids) and meta["val"]["articles"] == len(val_ids)
    assert json.loads((tmp_path / "sft" / "meta.json").read_text())["articles_seen"] == 40
    assert meta["train"]["conversations"] == sum(1 for _ in read_sft_split(tmp_path / "sft", "train"))


def test_user_jsonl_is_validated_folded_and_split(tmp_path):
    corpus = make_corpus(tmp_path / "clean", n=20)
    user = tmp_path / "mine.jsonl"
    lines = [
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": f"Q{i}<|assistant|>"}, {"role": "assistant", "content": f"A{i}"}]}
        for i in range(30)
    ]
    user.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    meta = build_sft_data(corpus, tmp_path / "sft", SftDataConfig(val_fraction=0.3, user_jsonl=str(user)))
    convs = [c for s in ("train", "val") for c in read_sft_split(tmp_path / "sft", s) if c["source"] == "user"]
    assert len(convs) == 30
    assert meta["train"]["by_kind"]["user"] + meta["val"]["by_kind"]["user"] == 30
    assert convs[0]["messages"][0] == {"role": "user", "content": "Be kind.\n\nQ0"}


@pytest.mark.parametrize(
    "line, needle",
    [
        ("{not json", "mine.jsonl:2: not valid JSON"),
        ('{"conversation": []}', "mine.jsonl:2: expected an object"),
        ('{"messages": [{"role": "assistant", "content": "x"}]}', "mine.jsonl:2: message 0 has role 'assistant'"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "mine.jsonl:2: conversation must end with an assistant"),
        ('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, {"role": "system", "content": "z"}]}', "mine.jsonl:2: message 2 is a system message"),
    ],
)
def test_user_jsonl_errors_name_file_and_line(tmp_path, line, needle):
    path = tmp_path / "mine.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(WikigptError, match=needle):
        list(iter_user_conversations(path))


def test_missing_user_jsonl_and_failed_build_leave_no_output(tmp_path):
    corpus = make_corpus(tmp_path / "clean", n=5)
    with pytest.raises(WikigptError, match="nope.jsonl: sft.user_jsonl file not found"):
        build_sft_data(corpus, tmp_path / "sft", SftDataConfig(user_jsonl=str(tmp_path / "nope.jsonl")))
    assert not (tmp_path / "sft").exists()


# ---------------------------------------------------------------------------------------------
# Training

import dataclasses  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from wikigpt.chat_template import IGNORE_INDEX, encode_conversation  # noqa: E402
from wikigpt.config import RuntimeConfig  # noqa: E402
from wikigpt.model import GPT, GPTConfig  # noqa: E402
from wikigpt.sft import SftConfig, collate, encode_split, epoch_batches, masked_loss, run_sft, train_sft  # noqa: E402
from wikigpt.specials import PAD_ID  # noqa: E402
from wikigpt.train.checkpoint import load_model, save_model  # noqa: E402

QA = [
    ("What is Paris?", "Paris is the capital of France."),
    ("What is the fox?", "The quick brown fox jumps over the lazy dog."),
    ("Tell me about Wikipedia.", "Wikipedia is a free online encyclopedia."),
    ("What is photosynthesis?", "Photosynthesis converts light into chemical energy."),
]


def tiny_gpt(tok, seed=0, block=48):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=tok.get_vocab_size(), block_size=block, n_layer=2, n_head=2, n_embd=32))


def examples(tok, n=8):
    out = []
    for i in range(n):
        q, a = QA[i % len(QA)]
        out.append(encode_conversation(tok, [{"role": "user", "content": q}, {"role": "assistant", "content": a}]))
    return out


def test_collate_pads_and_shifts(tiny_tokenizer):
    exs = examples(tiny_tokenizer, 2)
    x, y = collate(exs, torch.device("cpu"))
    width = max(len(ids) for ids, _ in exs)
    assert x.shape == y.shape == (2, width - 1)
    for row, (ids, labels) in enumerate(exs):
        assert x[row, : len(ids) - 1].tolist() == ids[:-1]
        assert y[row, : len(ids) - 1].tolist() == labels[1:]
        assert (x[row, len(ids) :] == PAD_ID).all() and (y[row, len(ids) - 1 :] == IGNORE_INDEX).all()


def test_masked_loss_counts_only_assistant_tokens(tiny_tokenizer):
    model = tiny_gpt(tiny_tokenizer).eval()
    exs = examples(tiny_tokenizer, 3)
    total, count = 0.0, 0
    for ids, labels in exs:
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids[:-1]]), torch.tensor([labels[1:]]))
        y = torch.tensor(labels[1:])
        keep = y != IGNORE_INDEX
        total += float(F.cross_entropy(logits[0][keep], y[keep], reduction="sum"))
        count += int(keep.sum())
    assert masked_loss(model, exs, batch_size=2, device=torch.device("cpu")) == pytest.approx(total / count, rel=1e-5)


def test_epoch_batches_cover_each_example_once_and_are_deterministic():
    lengths = [5, 9, 3, 7, 1, 8, 2, 6, 4, 10, 11]
    b0 = epoch_batches(lengths, 4, seed=1, epoch=0)
    assert b0 == epoch_batches(lengths, 4, seed=1, epoch=0)
    assert sorted(i for b in b0 for i in b) == list(range(11))
    assert sorted(len(b) for b in b0) == [3, 4, 4]
    assert b0 != epoch_batches(lengths, 4, seed=1, epoch=1)


def small_cfg(**kw):
    base = dict(epochs=6, batch_size=4, lr=3e-3, min_lr=3e-4, warmup_steps=2, eval_interval=4, checkpoint_interval=6, seed=3, device="cpu")
    base.update(kw)
    return SftConfig(**base)


def test_training_learns_the_answers(tiny_tokenizer):
    model = tiny_gpt(tiny_tokenizer)
    exs = examples(tiny_tokenizer, 8)
    res = train_sft(model, exs, exs[:4], small_cfg(epochs=15, lr=1e-2, min_lr=1e-3), torch.device("cpu"))
    assert res.steps == 30 and res.history[0]["step"] == 0
    assert res.final_val_loss < res.initial_val_loss * 0.5
    assert res.trained_tokens == 15 * sum(sum(1 for l in labels[1:] if l != IGNORE_INDEX) for _, labels in exs)


def test_resume_after_kill_gives_identical_weights(tiny_tokenizer, tmp_path):
    exs = examples(tiny_tokenizer, 8)
    cfg = small_cfg()
    fp = {"run": "a"}
    straight = tiny_gpt(tiny_tokenizer)
    train_sft(straight, exs, exs[:2], cfg, torch.device("cpu"), ckpt_dir=tmp_path / "a", run_fp=fp)

    class Killed(Exception):
        pass

    def kill_at_7(values, step):
        if step == 7:  # after the step-6 checkpoint
            raise Killed

    first = tiny_gpt(tiny_tokenizer)
    with pytest.raises(Killed):
        train_sft(first, exs, exs[:2], cfg, torch.device("cpu"), ckpt_dir=tmp_path / "b", run_fp=fp, log=kill_at_7)
    resumed = tiny_gpt(tiny_tokenizer, seed=99)  # different init: everything must come from the state
    res = train_sft(resumed, exs, exs[:2], cfg, torch.device("cpu"), ckpt_dir=tmp_path / "b", run_fp=fp)
    assert res.resumed_from_step == 6 and res.steps == 12
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    # A different fingerprint never resumes: it starts from step 0.
    fresh = train_sft(tiny_gpt(tiny_tokenizer), exs, exs[:2], cfg, torch.device("cpu"), ckpt_dir=tmp_path / "b", run_fp={"run": "b"})
    assert fresh.resumed_from_step == 0


def test_encode_split_truncates_long_conversations(tiny_tokenizer, tmp_path):
    (tmp_path / "train.jsonl").write_text(
        "\n".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) for q, a in QA) + "\n"
    )
    full, cut = encode_split(tiny_tokenizer, tmp_path, "train", 10_000)
    assert cut == 0 and len(full) == 4
    short, cut = encode_split(tiny_tokenizer, tmp_path, "train", 12)
    assert cut == sum(len(ids) > 12 for ids, _ in full)
    assert all(len(ids) <= 12 for ids, _ in short)


def test_run_sft_writes_model_curve_and_metrics(tiny_tokenizer, tmp_path):
    corpus = make_corpus(tmp_path / "clean", n=30)
    (tmp_path / "tok").mkdir()
    tiny_tokenizer.save(str(tmp_path / "tok" / "tokenizer.json"))
    save_model(tmp_path / "base", tiny_gpt(tiny_tokenizer, block=128))
    cfg = small_cfg(epochs=1, batch_size=16, val_fraction=0.2, eval_conversations=8)
    rt = RuntimeConfig(wandb="disabled", progress=False)
    paths = dict(
        clean_dir=corpus, tokenizer_path=tmp_path / "tok", base_dir=tmp_path / "base", sft_dir=tmp_path / "sft",
        ckpt_dir=tmp_path / "ckpt", out_dir=tmp_path / "out", plot_path=tmp_path / "plots" / "sft_loss.tsv",
    )
    m = run_sft(cfg=cfg, runtime=rt, **paths)
    assert (tmp_path / "sft" / "train.jsonl").exists() and (tmp_path / "ckpt" / "state.pt").exists()
    model = load_model(tmp_path / "out")
    assert model.config.block_size == 128
    rows = (tmp_path / "plots" / "sft_loss.tsv").read_text().splitlines()
    assert rows[0] == "step\ttrain_loss\tval_loss" and len(rows) == m["steps"] + 2
    assert m["train_conversations"] == m["data"]["train_conversations"] > 0
    assert m["final_val_loss"] < m["initial_val_loss"]
    # Second run with the same inputs resumes at the end: nothing to do, same weights.
    again = run_sft(cfg=cfg, runtime=rt, **paths)
    assert again["resumed_from_step"] == m["steps"]
    assert torch.equal(load_model(tmp_path / "out").wte.weight, model.wte.weight)
    # Changing a param starts fresh.
    changed = run_sft(cfg=dataclasses.replace(cfg, lr=1e-3), runtime=rt, **paths)
    assert changed["resumed_from_step"] == 0
