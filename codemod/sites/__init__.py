"""Finding sites: name resolution, the framework catalogue, one module per file kind."""
