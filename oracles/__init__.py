"""Backends (systems under test and references), worker isolation and comparison."""
