"""Training: the generator (the modules at the top of this package: data, Lightning module,
LoRA, runs, export) and the codec (``training/codec``: NeMo's own GAN step under Lightning).
May import up to listening (the card takes listening results), never data tools or recipes.

Both build their Lightning trainer with :func:`kani_adapt.trainer.lightning.build_trainer`. The generator's
modules stay at the top of the package instead of moving into ``training/generator``: they are
most of it, every command, document and benchmark names them there, and the move would change
no dependency; the codec's trainer is the part that had to come over from ``codec/``, where it
imported training code from above the models layer.
"""
