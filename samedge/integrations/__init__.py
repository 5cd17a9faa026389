"""Bridges to other tools; each module imports its tool, so the core never does.

- ``spacy_component``: the ``samedge`` spaCy pipeline component (``pip install 'samedge[spacy]'``).
"""
