"""Evaluation: bits per byte bookkeeping, val loss, cloze construction and scoring, QA metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wikigpt import evaluate as ev
from wikigpt.errors import WikigptError
from wikigpt.model import GPT, GPTConfig
from wikigpt.specials import END_ID

DOCS = [
    "Zürich is a city in Switzerland. It lies on a lake. The lake is long and deep. Boats cross it daily. 東京 is far away.",
    "Photosynthesis converts light into chemical energy. Plants use it to grow. Leaves hold chlorophyll. Oxygen is released.",
    "The quick brown fox jumps over the lazy dog. The dog sleeps all day. The fox runs into the forest. Nobody sees it again.",
]


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tiny_tokenizer.get_vocab_size(), block_size=32, n_layer=2, n_head=2, n_embd=32)
    return GPT(cfg).eval()


def packed(tok, docs):
    ids = []
    for d in docs:
        ids += tok.encode(d, add_special_tokens=False).ids + [END_ID]
    return np.array(ids, dtype=np.uint16)


def test_token_byte_lengths_match_utf8_of_decoded_text(tiny_tokenizer):
    lengths = ev.token_byte_lengths(tiny_tokenizer)
    assert lengths[:4].tolist() == [0, 0, 0, 0]
    for text in DOCS + ["🙂 Москва café"]:
        ids = tiny_tokenizer.encode(text, add_special_tokens=False).ids
        assert int(lengths[ids].sum()) == len(text.encode("utf-8"))


def test_val_metrics_match_a_direct_computation(tiny_tokenizer, tiny_model):
    tokens = packed(tiny_tokenizer, DOCS)
    m = ev.val_metrics(tiny_model, tokens, ev.token_byte_lengths(tiny_tokenizer), batch_size=2)
    T = tiny_model.config.block_size
    n_windows = (len(tokens) - 1) // T
    nats, text_nats, nbytes = [], 0.0, 0
    lengths = ev.token_byte_lengths(tiny_tokenizer)
    for w in range(n_windows):
        chunk = torch.tensor(tokens[w * T : w * T + T + 1].astype(np.int64))
        logits, _ = tiny_model(chunk[None, :-1], chunk[None, 1:])
        per = F.cross_entropy(logits[0], chunk[1:], reduction="none")
        nats += per.tolist()
        for t, v in zip(chunk[1:].tolist(), per.tolist()):
            if t != END_ID:
                text_nats += v
                nbytes += int(lengths[t])
    assert m["val_tokens"] == n_windows * T
    assert m["val_loss"] == pytest.approx(sum(nats) / len(nats), rel=1e-5)
    assert m["val_ppl"] == pytest.approx(math.exp(m["val_loss"]), rel=1e-6)
    assert m["val_bpb"] == pytest.approx(text_nats / math.log(2) / nbytes, rel=1e-5)
    # Untrained: loss near ln(vocab).
    assert abs(m["val_loss"] - math.log(tiny_model.config.vocab_size)) < 0.5
    capped = ev.val_metrics(tiny_model, tokens, lengths, batch_size=2, max_tokens=T)
    assert capped["val_tokens"] == T


def test_split_documents_on_end_tokens(tiny_tokenizer):
    docs = ev.split_documents(packed(tiny_tokenizer, DOCS))
    assert [tiny_tokenizer.decode(d.tolist()) for d in docs] == DOCS


def test_build_cloze_truth_from_same_doc_distractors_from_others():
    items = ev.build_cloze(DOCS, n_items=50, context_sentences=2, seed=3)
    assert items == ev.build_cloze(DOCS, n_items=50, context_sentences=2, seed=3)
    sents = [ev.split_sentences(d) for d in DOCS]
    assert len(items) == sum(len(s) - 2 for s in sents)
    answers = set()
    for it in items:
        assert len(it.candidates) == 4 and len(set(it.candidates)) == 4
        src = next(i for i, s in enumerate(sents) if it.context.split(". ")[0].rstrip(".") in " ".join(s))
        truth = it.candidates[it.answer]
        assert truth in sents[src] and it.context + " " + truth in " ".join(sents[src])
        for j, c in enumerate(it.candidates):
            if j != it.answer:
                assert c not in sents[src]
        answers.add(it.answer)
    assert len(answers) > 1  # the true answer is not always in the same slot
    with pytest.raises(WikigptError, match="cloze needs at least 2 held-out documents"):
        ev.build_cloze(DOCS[:1], 10, 2, 0)


def test_cloze_picks_by_mean_not_total_loglik(tiny_tokenizer, tiny_model, monkeypatch):
    # Candidate 0 is short with total -2 (mean -2); candidate 2 is long with total -6 but mean -1.
    fake = {"aa": [-2.0], "bb": [-3.0, -3.0], "cc": [-1.0] * 6, "dd": [-5.0]}

    def logprobs(model, ctx, cont):
        return torch.tensor(fake[tiny_tokenizer.decode(cont).strip()])

    monkeypatch.setattr(ev, "continuation_logprobs", logprobs)
    items = [ev.ClozeItem("ctx", ("aa", "bb", "cc", "dd"), answer=2), ev.ClozeItem("ctx", ("aa", "bb", "cc", "dd"), answer=0)]
    assert ev.cloze_accuracy(tiny_model, tiny_tokenizer, items) == {"cloze_acc": 0.5, "cloze_n": 2, "cloze_chance": 0.25}


def test_continuation_logprobs_equal_full_forward(tiny_tokenizer, tiny_model):
    ctx = tiny_tokenizer.encode("The fox", add_special_tokens=False).ids
    cont = tiny_tokenizer.encode(" jumps over", add_special_tokens=False).ids
    lp = ev.continuation_logprobs(tiny_model, ctx, cont)
    ids = torch.tensor([ctx + cont])
    logits, _ = tiny_model(ids[:, :-1], ids[:, 1:])
    full = torch.log_softmax(logits[0], -1)[torch.arange(ids.size(1) - 1), ids[0, 1:]]
    assert torch.allclose(lp, full[-len(cont) :], atol=1e-5)


@pytest.mark.parametrize(
    "pred, ref, f1, em",
    [
        ("The Eiffel Tower!", "eiffel tower", 1.0, 1.0),
        ("Paris is in France", "Paris, France", 2 * (2 / 4) * 1.0 / (2 / 4 + 1.0), 0.0),
        ("nothing", "something else", 0.0, 0.0),
        ("", "", 1.0, 1.0),
        ("", "x", 0.0, 0.0),
    ],
)
def test_squad_f1_and_em(pred, ref, f1, em):
    assert ev.token_f1(pred, ref) == pytest.approx(f1)
    assert ev.exact_match(pred, ref) == em


def test_qa_scores_average_over_conversations(tiny_tokenizer, tiny_model, monkeypatch):
    convs = [
        {"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "red apple"}]},
        {"messages": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "blue sky"}]},
    ]
    answers = {"Q1": "red apple", "Q2": "a green sky"}
    monkeypatch.setattr(ev, "generate_answer", lambda m, t, history, n: answers[history[-1]["content"]])
    scores, examples = ev.qa_scores(tiny_model, tiny_tokenizer, convs, 8)
    assert scores == {"qa_f1": pytest.approx((1.0 + 0.5) / 2), "qa_em": 0.5, "qa_n": 2}
    assert examples[1] == {"question": "Q2", "reference": "blue sky", "answer": "a green sky"}


def test_generate_answer_is_bounded_and_deterministic_when_greedy(tiny_tokenizer, tiny_model):
    msgs = [{"role": "user", "content": "What is the fox?"}]
    a = ev.generate_answer(tiny_model, tiny_tokenizer, msgs, max_new_tokens=5)
    assert a == ev.generate_answer(tiny_model, tiny_tokenizer, msgs, max_new_tokens=5)
    assert len(tiny_tokenizer.encode(a, add_special_tokens=False).ids) <= 6


def test_run_eval_end_to_end_on_packed_corpus(tiny_tokenizer, tmp_path):
    """Real pack output + two tiny models -> nested metrics for both and a samples report."""
    import json

    from tests.test_sft import make_corpus
    from wikigpt.pack import PackConfig, pack_corpus
    from wikigpt.sft_data import SftDataConfig, build_sft_data
    from wikigpt.train.checkpoint import save_model

    corpus = make_corpus(tmp_path / "clean", n=12)
    (tmp_path / "tok").mkdir()
    tiny_tokenizer.save(str(tmp_path / "tok" / "tokenizer.json"))
    pack_corpus(corpus, tmp_path / "tok", tmp_path / "tokens", PackConfig(val_every=4), log=lambda s: None)
    build_sft_data(corpus, tmp_path / "sft", SftDataConfig(val_fraction=0.3))
    cfg = GPTConfig(vocab_size=tiny_tokenizer.get_vocab_size(), block_size=64, n_layer=1, n_head=2, n_embd=16)
    for seed, name in ((0, "base"), (1, "sft")):
        torch.manual_seed(seed)
        save_model(tmp_path / "models" / name, GPT(cfg))
    ecfg = ev.EvalConfig(qa_questions=3, qa_max_new_tokens=4, cloze_items=5, cloze_context_sentences=1,
                         sample_prompts=["What is Town1?"], sample_max_new_tokens=4, device="cpu")
    out = ev.run_eval(tmp_path / "tokens", tmp_path / "tok", {"base": tmp_path / "models" / "base", "sft": tmp_path / "models" / "sft"},
                      tmp_path / "sft", tmp_path / "reports" / "samples.md", ecfg)
    assert list(out) == ["base", "sft"]
    for m in out.values():
        assert set(m) >= {"val_loss", "val_ppl", "val_bpb", "val_tokens", "cloze_acc", "cloze_n", "cloze_chance", "qa_f1", "qa_em", "qa_n"}
        assert m["cloze_n"] == 5 and m["qa_n"] == 3 and 0 <= m["cloze_acc"] <= 1
        assert abs(m["val_loss"] - math.log(cfg.vocab_size)) < 0.5
    assert out["base"]["val_loss"] != out["sft"]["val_loss"]
    json.dumps(out)  # plain numbers only: dvc metrics can read it
    report = (tmp_path / "reports" / "samples.md").read_text()
    assert "## What is Town1?" in report and "**base:**" in report and "**sft:**" in report
    # A model from another tokenizer is refused with a clear message.
    save_model(tmp_path / "small", GPT(GPTConfig(vocab_size=100, block_size=64, n_layer=1, n_head=2, n_embd=16)))
    with pytest.raises(WikigptError, match="model vocab_size 100 is smaller than the tokenizer's"):
        ev.run_eval(tmp_path / "tokens", tmp_path / "tok", {"x": tmp_path / "small"}, tmp_path / "sft", tmp_path / "r.md", ecfg)


def test_qa_conversations_are_spread_over_the_held_out_file(tmp_path):
    import json

    lines = [{"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]} for i in range(10)]
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    picked = [c["messages"][0]["content"] for c in ev.load_qa_conversations(tmp_path, 4)]
    assert picked == ["Q0", "Q3", "Q6", "Q9"]
    assert len(ev.load_qa_conversations(tmp_path, 0)) == 10
    (tmp_path / "val.jsonl").write_text("")
    with pytest.raises(WikigptError, match="no held-out SFT conversations"):
        ev.load_qa_conversations(tmp_path, 4)
