"""ML ops on onnxruntime: face detection and blurring, OCR, moderation.

Only the ML worker runs these. Importing this package (or ``pixtools.ml.ops``) does not import
onnxruntime; the first inference does, and it loads each model once per process.
"""
