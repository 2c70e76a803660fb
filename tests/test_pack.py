"""Pack stage: flat token files, split rule, determinism, dtype, guards, readers, the stage CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.test_tokenizer import make_docs, small_cfg, write_corpus
from wikigpt.errors import WikigptError
from wikigpt.pack import Encoder, PackConfig, check_tokenizer_matches, choose_dtype, open_tokens, pack_corpus, read_meta
from wikigpt.specials import END_ID
from wikigpt.tokenizer import build_tokenizer, load_tokenizer, tiktoken_encoding

N_DOCS = 45


def tiktoken_available() -> bool:
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return make_docs(N_DOCS, seed=1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, docs) -> tuple[Path, Path]:
    """(corpus, tokenizer dir): a small corpus in 3 shards and a 512-token tokenizer trained on it."""
    root = tmp_path_factory.mktemp("pack")
    corpus = write_corpus(root / "clean", docs, rows_per_shard=20)
    build_tokenizer(corpus, root / "tokenizer", small_cfg())
    return corpus, root / "tokenizer"


ENCODERS = ["hf", pytest.param("tiktoken", marks=pytest.mark.skipif(not tiktoken_available(), reason="tiktoken not installed"))]


@pytest.fixture(scope="module")
def packed(setup, tmp_path_factory) -> tuple[Path, dict]:
    corpus, tok = setup
    out = tmp_path_factory.mktemp("packed") / "tokens"
    return out, pack_corpus(corpus, tok, out, PackConfig(val_every=10, encoder="hf"), log=lambda s: None)


def split_docs(ids: np.ndarray) -> list[np.ndarray]:
    """Documents of a packed array: the runs before each <|end|>."""
    ends = np.flatnonzero(ids == END_ID)
    assert ends.size and ends[-1] == len(ids) - 1, "a packed file ends with <|end|>"
    return np.split(np.asarray(ids), ends + 1)[:-1]


def test_files_decode_back_to_the_documents_with_end_at_every_seam(packed, setup, docs):
    out, metrics = packed
    tok = load_tokenizer(setup[1])
    val_idx = [i for i in range(N_DOCS) if i % 10 == 0]  # 0, 10, 20, 30, 40
    expected = {"val": [docs[i]["text"] for i in val_idx], "train": [d["text"] for i, d in enumerate(docs) if i not in val_idx]}
    for split in ("train", "val"):
        ids = open_tokens(out, split)
        pieces = split_docs(ids)
        assert int(np.count_nonzero(ids == END_ID)) == len(expected[split]) == metrics[f"{split}_docs"]
        assert [p[-1] for p in pieces] == [END_ID] * len(pieces)
        assert [tok.decode(p[:-1].tolist()) for p in pieces] == expected[split]
        assert int(ids.max()) < tok.get_vocab_size()
    assert metrics["documents"] == N_DOCS and metrics["val_docs"] == 5


def test_meta_records_dtype_counts_and_tokenizer_hash(packed, setup):
    out, metrics = packed
    meta = read_meta(out)
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 512
    for split in ("train", "val"):
        assert (out / f"{split}.bin").stat().st_size == 2 * meta[f"{split}_tokens"] == 2 * metrics[f"{split}_tokens"]
        assert open_tokens(out, split).dtype == np.dtype("<u2")
    check_tokenizer_matches(meta, setup[1])  # same file: passes
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "train.bin", "val.bin"]


def test_same_inputs_give_byte_identical_outputs_whatever_the_shard_layout(packed, setup, docs, tmp_path):
    out, _ = packed
    resharded = write_corpus(tmp_path / "clean", docs, rows_per_shard=7)  # same rows, other shards
    again = tmp_path / "tokens"
    pack_corpus(resharded, setup[1], again, PackConfig(val_every=10), log=lambda s: None)
    for name in ("train.bin", "val.bin"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    # meta differs only in where the input came from
    a, b = read_meta(out), read_meta(again)
    assert {k: v for k, v in a.items() if k != "source"} == {k: v for k, v in b.items() if k != "source"}


def test_tiktoken_and_hf_encoders_write_identical_bytes(packed, setup, tmp_path):
    pytest.importorskip("tiktoken")
    out, hf_metrics = packed
    metrics = pack_corpus(setup[0], setup[1], tmp_path / "tt", PackConfig(val_every=10, encoder="tiktoken"), log=lambda s: None)
    assert (hf_metrics["encoder"], metrics["encoder"]) == ("hf", "tiktoken")
    assert metrics["docs_verified_against_hf"] == 1  # documents 0 (and 64, 128, ... on larger corpora)
    for name in ("train.bin", "val.bin", "meta.json"):
        assert (tmp_path / "tt" / name).read_bytes() == (out / name).read_bytes()


def test_tiktoken_mismatch_is_caught_and_foreign_tokenizers_fall_back(setup, tmp_path, monkeypatch):
    pytest.importorskip("tiktoken")
    tok = load_tokenizer(setup[1])
    encode = Encoder(tok, "tiktoken", threads=1)
    monkeypatch.setattr(encode.tiktoken, "encode_to_numpy", lambda text, **kw: np.array([5, 6], dtype=np.uint32))
    with pytest.raises(WikigptError, match="tiktoken and HF tokenizers disagree on document id=7"):
        encode.documents(["ka to", "ri mu"], [7, 8], first_index=0, where=tmp_path)
    # a normalizer makes HF ids differ from plain byte-level BPE: no tiktoken for it
    from tokenizers import normalizers

    tok.normalizer = normalizers.NFC()
    with pytest.raises(WikigptError, match="cannot be converted to tiktoken: it has a normalizer"):
        tiktoken_encoding(tok)
    logged = []
    assert Encoder(tok, "auto", threads=1, log=logged.append).name == "hf" and "normalizer" in logged[0]
    with pytest.raises(WikigptError, match="pack.encoder=tiktoken: tokenizer cannot be converted"):
        Encoder(tok, "tiktoken", threads=1)


def test_val_split_is_non_empty_on_a_corpus_smaller_than_val_every(setup, tmp_path):
    corpus = write_corpus(tmp_path / "clean", make_docs(7, seed=2))
    metrics = pack_corpus(corpus, setup[1], tmp_path / "tokens", PackConfig(val_every=200), log=lambda s: None)
    assert (metrics["val_docs"], metrics["train_docs"]) == (1, 6)
    assert len(split_docs(open_tokens(tmp_path / "tokens", "val"))) == 1


def test_dtype_choice():
    assert choose_dtype(4096) == np.dtype("<u2")
    assert choose_dtype(65536) == np.dtype("<u2")  # ids 0..65535 fit
    assert choose_dtype(65537) == np.dtype("<u4")
    assert choose_dtype(512, "uint32") == np.dtype("<u4")
    with pytest.raises(WikigptError, match="pack.dtype=uint16 cannot hold vocab_size=70000"):
        choose_dtype(70000, "uint16")


def test_forced_uint32_holds_the_same_ids(packed, setup, tmp_path):
    out, _ = packed
    pack_corpus(setup[0], setup[1], tmp_path / "t32", PackConfig(val_every=10, dtype="uint32"), log=lambda s: None)
    assert read_meta(tmp_path / "t32")["dtype"] == "uint32"
    wide = open_tokens(tmp_path / "t32", "train")
    assert wide.dtype == np.dtype("<u4")
    assert np.array_equal(np.asarray(wide), np.asarray(open_tokens(out, "train")))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_special_literal_in_a_document_fails_and_leaves_no_output(setup, tmp_path, encoder):
    bad = make_docs(6, seed=3)
    bad[4]["text"] += " and then <|assistant|> appeared"
    corpus = write_corpus(tmp_path / "clean", bad)
    out = tmp_path / "tokens"
    out.mkdir()
    (out / "train.bin").write_bytes(b"stale")
    with pytest.raises(WikigptError, match=rf"document id={bad[4]['id']} contains the control token <\|assistant\|>"):
        pack_corpus(corpus, setup[1], out, PackConfig(val_every=10, encoder=encoder), log=lambda s: None)
    assert not out.exists() and not list(tmp_path.glob(".tokens.tmp-*"))


def test_empty_and_one_document_corpora_fail(setup, tmp_path):
    with pytest.raises(WikigptError, match="no documents to pack"):
        pack_corpus(write_corpus(tmp_path / "empty", []), setup[1], tmp_path / "t", PackConfig(), log=lambda s: None)
    with pytest.raises(WikigptError, match="corpus needs at least 2 documents"):
        pack_corpus(write_corpus(tmp_path / "one", make_docs(1)), setup[1], tmp_path / "t", PackConfig(), log=lambda s: None)
    with pytest.raises(WikigptError, match="pack.val_every must be >= 2"):
        pack_corpus(setup[0], setup[1], tmp_path / "t", PackConfig(val_every=1), log=lambda s: None)
    assert not (tmp_path / "t").exists()


def test_corrupt_or_mismatched_tokenizer(packed, setup, tmp_path):
    corrupt = tmp_path / "tok" / "tokenizer.json"
    corrupt.parent.mkdir()
    corrupt.write_text("{ truncated")
    with pytest.raises(WikigptError, match=r"tok/tokenizer.json: not a valid tokenizer.json"):
        pack_corpus(setup[0], corrupt.parent, tmp_path / "t", PackConfig(), log=lambda s: None)
    other = tmp_path / "other"
    build_tokenizer(setup[0], other, small_cfg(vocab_size=400))
    with pytest.raises(WikigptError, match="differs from the tokenizer the tokens were packed with"):
        check_tokenizer_matches(read_meta(packed[0]), other)


def test_readers_reject_damaged_token_dirs(packed, tmp_path):
    bad = tmp_path / "tokens"
    shutil.copytree(packed[0], bad)
    with pytest.raises(WikigptError, match="unknown token split 'test'"):
        open_tokens(bad, "test")
    with open(bad / "train.bin", "ab") as f:
        f.write(b"\x01")  # odd byte count
    with pytest.raises(WikigptError, match=r"train.bin: \d+ bytes is not a multiple of 2"):
        open_tokens(bad, "train")
    (bad / "train.bin").write_bytes((bad / "train.bin").read_bytes()[:-3])  # whole tokens, but too few
    with pytest.raises(WikigptError, match="truncated or stale"):
        open_tokens(bad, "train")
    (bad / "val.bin").unlink()
    with pytest.raises(WikigptError, match=r"val.bin: not found"):
        open_tokens(bad, "val")
    (bad / "meta.json").write_text("{")
    with pytest.raises(WikigptError, match="meta.json: not valid JSON"):
        read_meta(bad)
    (bad / "meta.json").write_text(json.dumps({"dtype": "uint16"}))
    with pytest.raises(WikigptError, match=r"meta.json: missing key\(s\)"):
        read_meta(bad)
    (bad / "meta.json").unlink()
    with pytest.raises(WikigptError, match="meta.json: not found"):
        read_meta(bad)


def test_stages_run_from_a_repo_root_and_fail_in_one_line(docs, tmp_path):
    """`python stages/tokenizer.py` then `stages/pack.py`, as dvc.yaml calls them."""
    write_corpus(tmp_path / "data" / "clean", docs)
    params = {
        "tokenizer": {**small_cfg().__dict__, "vocab_size": 400},
        "pack": {"val_every": 10, "dtype": "auto"},
        "runtime": {"threads": 1, "progress": False},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("tokenizer", "pack"):
        run = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / f"{stage}.py")], cwd=tmp_path, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    tok_metrics = json.loads((tmp_path / "metrics" / "tokenizer.json").read_text())
    pack_metrics = json.loads((tmp_path / "metrics" / "pack.json").read_text())
    assert tok_metrics["vocab_size"] == 400 and pack_metrics["documents"] == N_DOCS
    assert "<|end|>" in run.stdout  # the decoded heads show the document seams
    check_tokenizer_matches(read_meta(tmp_path / "data" / "tokens"), tmp_path / "data" / "tokenizer")

    params["pack"]["dtype"] = "uint8"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "pack.py")], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.startswith("error: params.yaml: pack.dtype: expected one of")
