"""Environments, behaviour policies, the Zarr dataset store and collection."""
