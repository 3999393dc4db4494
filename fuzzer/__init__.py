"""dlfuzz: the core data model and the layers after the specs (generate ... campaign), and the CLI."""
