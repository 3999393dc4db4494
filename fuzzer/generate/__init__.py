"""Random valid graphs from the specs, their symbolic re-solution, and the validity checks."""
