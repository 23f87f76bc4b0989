"""curator: turn raw crawls and corpora into clean, deduplicated, split Parquet datasets on Ray."""

__version__ = "0.1.0"
