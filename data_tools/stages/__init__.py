"""The data stages, one module each, named as the stage and listed in ``registry.ORDER``; each
defines ``STAGE`` and its config section, built from ``kit`` (the protocol, which imports only the
records). Stages may import the kit, records, inputs, speech and report wings, models and scorers."""
