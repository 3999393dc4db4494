"""Bug folders: report.md, a standalone repro.py and a picture of the graph."""
