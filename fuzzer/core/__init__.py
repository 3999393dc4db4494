"""The data model every layer shares: graph IR, dtypes, test cases and how they reach the disk."""
