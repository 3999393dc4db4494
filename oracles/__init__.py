"""Backends (systems under test and references) and the worker processes that isolate them."""
