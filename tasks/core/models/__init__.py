"""The model families: each one a module that declares itself (``logreg``, ``svm``, ``mlp``,
``cnn``), what they share (``base``, ``configs``, ``torch_base``), the ensemble over them, and the
catalog that lists them (``catalog``: build, load, identify). Nothing is imported here, so that a
family's code identity holds its own module and what it imports, not its siblings."""
