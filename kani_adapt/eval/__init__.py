"""Evaluation of KaniTTS2 checkpoints: eval sets, generation and scoring, statistics, reports,
the training-time callback. May import up to the scorers (never training or listening)."""
