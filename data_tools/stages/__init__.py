"""The data stages, one module each, named as the stage and listed in ``registry.ORDER``; each
defines ``STAGE``. May import the inputs, speech and report wings, models and scorers."""
