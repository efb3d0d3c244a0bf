"""The storage layer: it owns every path and file format the pipeline keeps.

Everything the pipeline keeps lives under one storage root (``MNIST_HOME``, see
:mod:`mnist_pipeline.storage.root`). Nothing outside this package builds a path or writes a file.
"""
