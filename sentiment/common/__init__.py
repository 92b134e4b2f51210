"""Shared plumbing with no model or tracking knowledge: atomic files, compute devices and
precision, progress lines, the input-text check.
"""
