"""Thin Prefect tasks: load → railwatch step → write. The logic lives in the railwatch package."""
