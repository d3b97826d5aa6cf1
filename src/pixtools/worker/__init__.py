"""The worker process: its Dramatiq entry module, metrics, source fetching and previews."""
