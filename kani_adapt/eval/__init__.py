"""Evaluation of KaniTTS2 checkpoints: eval sets, generation + scoring, statistics, reports.

``kani-adapt eval`` (``kani_adapt.cli.eval_command``) is the command; nothing heavy is imported
here.
"""
