"""Models: the four architectures, seven-member ensembles, ONNX export and a TF-free runtime.

Training side (imports TensorFlow/Keras or scikit-learn lazily): ``models.train``
(``train_ensemble``), ``models.nets``, ``models.forest``. Runtime side (numpy, onnx,
onnxruntime only): ``models.runtime`` (``Ensemble``), ``models.manifest``,
``models.ensemble`` (``combine_members``), ``models.onnxgraph``, ``models.treewalk``.
See models/README.md. This package never imports ``pipeline``.
"""
