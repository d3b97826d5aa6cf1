"""Where preview renditions live: beside what they preview, with a name no output can take.

Output names match ``[a-z0-9][a-z0-9_-]*`` (no dot), so ``{name}.preview.webp`` never
collides with an output's own ``{name}.{ext}``; the source's is under ``raw/``.
"""

from __future__ import annotations


def output_preview_key(job_id: str, name: str) -> str:
    """Where the preview of a job's output is stored."""
    return f"processed/{job_id}/{name}.preview.webp"


def source_preview_key(job_id: str) -> str:
    """Where the preview of a job's source is stored."""
    return f"raw/{job_id}/source.preview.webp"
