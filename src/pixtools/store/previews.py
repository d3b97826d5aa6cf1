"""Where preview renditions live: beside what they preview, with a name no output can take.

Output names match ``[a-z0-9][a-z0-9_-]*`` (no dot), so ``{name}.preview.webp`` never
collides with an output's own ``{name}.{ext}``; the source's is under ``raw/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pixtools.store.jobs import JobRecord


def output_preview_key(job_id: str, name: str) -> str:
    return f"processed/{job_id}/{name}.preview.webp"


def source_preview_key(job_id: str) -> str:
    return f"raw/{job_id}/source.preview.webp"


def job_object_keys(record: JobRecord) -> list[str]:
    """Every object a job may have stored (source, outputs, their previews, archive): what
    deleting or expiring the job removes. Deleting a key that was never written is a no-op."""
    jid = str(record.job.id)
    keys = [record.job.source.get("key"), record.job.archive_key, source_preview_key(jid)]
    for o in record.outputs:
        keys += [o.object_key, output_preview_key(jid, o.name)]
    return [k for k in keys if k]
