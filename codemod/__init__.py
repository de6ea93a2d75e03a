"""ddp-codemod: turn off DDP's find_unused_parameters=True only where evidence proves it safe."""

__version__ = "0.1.0"
