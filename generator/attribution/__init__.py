"""Attributions, head importance and logit lens: JAX transformations over one objective.

Every method here takes a scalar objective as a function of the input embeddings (and, for head
importance, of a [layer, head] head mask) and uses `jax.grad` / `jax.vmap` instead of loops of
separate forward passes.
"""
