"""Measurements (not shipped in the wheel): each prints ratios against a baseline run in the same process and rewrites its own section of BENCHMARKS.md."""
