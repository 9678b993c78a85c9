"""Annotation: the core (scale, errors, formats, the SQLite Store) and the Streamlit app built on it.

Layers point one way: `annotate.core` <- `analysis` <- `annotate.app`; `annotate.cli` is the command line over
the core. This file imports nothing, so `import annotate.core.scale` stays cheap.
"""
