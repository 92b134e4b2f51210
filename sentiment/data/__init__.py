"""The IMDB data: loading from parquet, aclImdb or the Hub, the seeded 70/30 split, subsets,
fingerprints, and how reviews are grouped into batches.
"""
