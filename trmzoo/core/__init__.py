"""The interfaces and generic machinery of recursive reasoning: layers, recursion, halting, loss, model."""
