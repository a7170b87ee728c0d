"""Recipes: one YAML file per language or accent, run end to end by ``kani-adapt run`` (schema,
plan, resumable runner, stages). May import every layer but the CLI."""
