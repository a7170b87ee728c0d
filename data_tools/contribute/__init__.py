"""The accent-dataset contribution gate: ``data-tools contribute validate|package DIR``. May
import the data config, inputs, speech and the stages' pure checks.

A contribution is one folder (see docs/contributing-datasets.md)::

    DIR/README.md                          dataset card: YAML front matter + description
    DIR/audio/<split>/<speaker>/<clip>.wav  + <clip>.txt (or .lab), a UTF-8 transcript

``split`` is train, validation or test. ``validate`` collects every problem and reports once;
``package`` writes a Hugging Face dataset folder (parquet with an Audio column + card).
"""
