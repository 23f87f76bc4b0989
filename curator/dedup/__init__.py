"""Global deduplication stages: exact (normalized-text hash) and fuzzy (MinHash LSH), both on Ray Data.

Both add ``dup_cluster`` (the id of the document kept for the cluster, on every member of a cluster of
two or more; null for documents with no duplicate) and ``dup_of`` (the id of the kept document, on
removed documents only) and set ``drop_reason`` on the removed ones.
"""
