"""The bag-of-words baseline a promoted model must beat, as plain files (no pickle).
"""
