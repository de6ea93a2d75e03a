"""Config files: which configs inherit, include or name which, and what runs read."""
