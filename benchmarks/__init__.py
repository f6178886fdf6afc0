"""Benchmarks: each prints ratios against a reference measured side by side in the same process."""
