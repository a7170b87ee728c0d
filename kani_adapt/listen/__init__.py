"""Listening tests tied to eval runs: the material of eval folders, per-listener plans, the
SQLite store, the web app and the statistics of the answers. May import up to evaluation."""
