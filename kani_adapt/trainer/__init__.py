"""Lightning plumbing both trainers share: the Trainer with its stop-signal and progress
callbacks, TensorBoard access, resume without unpickling. May import core and config."""
