"""Evidence: running a command under the recorder, trusting its files, pairing them."""
