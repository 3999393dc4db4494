"""dlfuzz engine: graph IR, generation, values, campaign, triage and the CLI."""
