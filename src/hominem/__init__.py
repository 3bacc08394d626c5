"""hominem: distil a multi-dimensional reward signal from a teacher into a reward model and a LoRA adapter.

Importing this package is light: it never imports torch or transformers. Heavy backends are
imported lazily by the stage that needs them.
"""

__version__ = "0.1.0"
