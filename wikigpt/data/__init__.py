"""Data stages: dump reading, wikitext to text, cleaning and dedup, the sample-dump generator."""
