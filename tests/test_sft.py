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
