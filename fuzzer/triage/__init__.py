"""Triage: signatures, reduction, triggers and filing findings into one folder per root cause."""
