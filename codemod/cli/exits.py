"""The exit codes every command shares. Imports nothing: the console script
(`cli.entry`) exits with them before click is imported."""

EXIT_CLEAN, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for Ctrl-C
