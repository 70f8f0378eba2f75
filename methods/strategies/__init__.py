"""CL strategies: how a model learns the next task (one file each)."""
