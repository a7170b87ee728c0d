"""Recipes: one YAML file per language or accent, run end to end by `kani-adapt run`."""
