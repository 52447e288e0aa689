"""Run medscrub batches on a Dask cluster."""
