"""The command line: flags in, a request to the pipeline, output and an exit code out."""
