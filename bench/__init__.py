"""Benchmarks: the HopX kernel against local ipykernel and the raw hopx-ai SDK stream.

Run ``python -m bench`` (``make bench``) for the full run, ``python -m bench --smoke``
for a quick check that every row still produces a number. See bench/RESULTS.md.
"""
