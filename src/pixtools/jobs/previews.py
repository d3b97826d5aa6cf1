"""The worker's preview step: after an image output is stored, a small WebP of it (and,
once per job, of the source) is stored too, made from what the worker already holds."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pixtools.services import Services
from pixtools.store.previews import output_preview_key, source_preview_key

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


class SourcePreview:
    """The source's preview made from the render's own decode of the source (saving a
    second decode), when the job has none yet and the decode is large enough for it."""

    def __init__(self, exists: bool) -> None:
        self.exists = exists
        self.data: bytes | None = None

    def from_decoded(self, im: Image.Image, source_size: tuple[int, int]) -> None:
        """The render's ``on_decoded`` hook (runs in the render's thread)."""
        from pixtools.imaging.preview import preview_of, preview_size

        width, height = preview_size(*source_size)
        if self.exists or im.width < width or im.height < height:  # drafted below a tile
            return
        try:
            self.data = preview_of(im, source_size)
        except Exception:  # best effort, as every preview
            log.warning("source preview from the decode not made", exc_info=True)


@dataclass(frozen=True, slots=True)
class Images:
    """What an output's previews are made from."""

    #: The encoded output; None for an analysis output (which still makes the source's
    #: preview, the one the UI draws its result on).
    rendered: bytes | None
    source: bytes
    #: What the render learnt of the source's preview: there already, or made from its
    #: decode (``SourcePreview``). None: nothing known, looked up here.
    source_preview: SourcePreview | None = None


async def store_previews(
    svc: Services, jid: uuid.UUID, name: str, images: Images, *, redo: bool
) -> None:
    """Best effort: a preview that cannot be made leaves the output as it is (the UI then
    shows a placeholder); it never fails the output. A ``redo`` keeps the output's preview
    an earlier attempt stored; the source's preview is written once, by whichever output
    gets there first."""
    from pixtools.imaging.preview import PREVIEW_CONTENT_TYPE, make_preview

    max_pixels = svc.settings.max_pixels
    try:
        if images.rendered is not None:
            tile = await asyncio.to_thread(make_preview, images.rendered, max_pixels=max_pixels)
            await svc.objects.put(
                output_preview_key(str(jid), name), tile, PREVIEW_CONTENT_TYPE, if_absent=redo
            )
        known = images.source_preview
        if known is not None and known.exists:
            return
        key = source_preview_key(str(jid))
        source_tile = known.data if known is not None else None
        if source_tile is None and not await svc.objects.exists(key):  # the job's first output
            source_tile = await asyncio.to_thread(
                make_preview, images.source, max_pixels=max_pixels
            )
        if source_tile is not None:
            await svc.objects.put(key, source_tile, PREVIEW_CONTENT_TYPE, if_absent=True)
    except Exception:
        log.warning("preview of %s/%s not made", jid, name, exc_info=True)
