"""Writers: sharded Parquet output, rejected documents, manifest."""
