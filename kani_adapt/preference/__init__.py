"""Preference training in rounds (``kani-adapt prefer``): sample rollouts from a policy, score
them, build preference pairs, train with ``objective: dpo`` and evaluate, each round sampling
from the previous round's merged export. May import up to training (the pairs file, the DPO
objective, runs and exports); recipes and the CLI import it.
"""
