"""Extract stage: the only stage that imports JAX. Checkpoint + corpus in, artifacts out."""

import os

# transformers prints advice that PyTorch is absent on import; we use it for tokenizers only.
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
