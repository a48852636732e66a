"""Prefect flows of railwatch: composition only (the steps live in tasks/ and railwatch/)."""
