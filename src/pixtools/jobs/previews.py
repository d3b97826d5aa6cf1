"""The worker's preview step: after an image output is stored, a small WebP of it (and,
once per job, of the source) is stored too, made from bytes the worker already holds."""

from __future__ import annotations

import asyncio
import logging
import uuid

from pixtools.services import Services
from pixtools.store.previews import output_preview_key, source_preview_key

log = logging.getLogger(__name__)


async def store_previews(
    svc: Services, jid: uuid.UUID, name: str, images: tuple[bytes | None, bytes], *, redo: bool
) -> None:
    """Best effort: a preview that cannot be made leaves the output as it is (the UI then
    shows a placeholder); it never fails the output. ``images`` is the rendered output —
    None for an analysis output, which still makes the source's preview the UI draws the
    result on — and the source. A ``redo`` keeps the output's preview an earlier attempt
    stored; the source's preview is written once, by whichever output gets there first."""
    from pixtools.imaging.preview import PREVIEW_CONTENT_TYPE, make_preview

    rendered, source = images
    max_pixels = svc.settings.max_pixels
    try:
        if rendered is not None:
            data = await asyncio.to_thread(make_preview, rendered, max_pixels=max_pixels)
            await svc.objects.put(
                output_preview_key(str(jid), name), data, PREVIEW_CONTENT_TYPE, if_absent=redo
            )
        key = source_preview_key(str(jid))
        if not await svc.objects.exists(key):  # the job's first output makes it
            data = await asyncio.to_thread(make_preview, source, max_pixels=max_pixels)
            await svc.objects.put(key, data, PREVIEW_CONTENT_TYPE, if_absent=True)
    except Exception:
        log.warning("preview of %s/%s not made", jid, name, exc_info=True)
