"""The runtime recorder: injected into training processes by `ddp-codemod trace`."""
