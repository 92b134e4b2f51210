"""Batch scoring: its configuration, the input files (parquet, CSV, JSON lines), sharded
scoring with a model loaded once per process, and the atomic output.
"""
