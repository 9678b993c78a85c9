"""The core layer: rating scale, errors, file formats and the Store. Imports nothing from analysis or the app."""
