"""Input and weight values: the gradient search and random sampling."""
