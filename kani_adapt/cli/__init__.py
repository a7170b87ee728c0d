"""The ``kani-adapt`` commands: one module per command, thin ``main(argv) -> int`` over the
layers below. May import every layer; heavy imports stay inside the command that needs them."""
