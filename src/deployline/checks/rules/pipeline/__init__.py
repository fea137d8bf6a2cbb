"""Catalog section: pipeline."""
