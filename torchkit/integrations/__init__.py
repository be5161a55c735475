"""Optional integrations with other libraries; each subpackage needs its own extra.

Nothing here is imported by ``import torchkit``: import a subpackage explicitly, e.g.
``from torchkit.integrations.hf import HFAutoUnit`` (``pip install 'torchkit[hf]'``).
"""
