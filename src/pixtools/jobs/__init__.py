"""The application's use cases: plain async functions over ``Services``, taking typed inputs,
refusing with ``pixtools.jobs.errors.JobError`` (never HTTP), returning records.

``submit`` creates a job from any source (``sources``); ``manage`` reads, retries, cancels
and deletes the caller's jobs.
"""
