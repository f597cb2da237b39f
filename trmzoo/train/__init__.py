"""Training: optimizers, EMA, the trainer loop, checkpoints and resume, distributed helpers."""
