"""Campaigns: the loop, the support probe, corpus replay and benchmarks."""
