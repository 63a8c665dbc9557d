"""Benchmark scenarios for `tally bench` (see bench/RESULTS.md)."""
