"""Planning: how many hours a recipe needs, from pilot runs on nested subsets of its own data and
learning curves fitted to what they measured (``kani-adapt plan``; docs/planning.md).

Above the recipes (it reads a recipe, prepares its data through the recipe runner, trains with
its generator section and evaluates with its eval section), below the CLI: may import every
other layer of kani_adapt and data_tools (its engines for Ray); nothing imports it but the CLI.
"""
