"""Which files to look at: the walk with its ignores, the byte filter, the project config."""
