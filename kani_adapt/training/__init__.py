"""Generator training: data, Lightning module, LoRA, runs, export."""
