import pyarrow.parquet as pq
import pytest

from wikigpt.data.shards import ShardWriter, count_rows, iter_rows, list_shards
from wikigpt.errors import WikigptError


def test_shard_roundtrip_order_and_rollover(tmp_path):
    rows = [{"id": i, "title": f"T{i}", "text": f"text {i}"} for i in range(25)]
    with ShardWriter(tmp_path / "c", rows_per_shard=10) as w:
        for r in rows:
            w.write(r)
    assert [p.name for p in list_shards(tmp_path / "c")] == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert list(iter_rows(tmp_path / "c", batch_size=4)) == rows
    assert count_rows(tmp_path / "c") == 25
    assert pq.ParquetFile(tmp_path / "c" / "part-00000.parquet").metadata.row_group(0).column(0).compression == "ZSTD"


def test_empty_corpus_has_one_empty_shard(tmp_path):
    with ShardWriter(tmp_path / "c"):
        pass
    assert count_rows(tmp_path / "c") == 0


def test_errors_name_the_path(tmp_path):
    with pytest.raises(WikigptError, match="corpus directory not found"):
        list_shards(tmp_path / "missing")
    (tmp_path / "d").mkdir()
    with pytest.raises(WikigptError, match="no part-"):
        list_shards(tmp_path / "d")
    (tmp_path / "d" / "part-00000.parquet").write_bytes(b"garbage")
    with pytest.raises(WikigptError, match="part-00000.parquet: not a readable Parquet shard"):
        list(iter_rows(tmp_path / "d"))
