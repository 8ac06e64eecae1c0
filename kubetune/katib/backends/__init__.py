"""Where experiments run: on this machine (local) or as Katib Experiments (kubernetes)."""
