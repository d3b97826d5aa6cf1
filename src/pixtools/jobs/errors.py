"""What the use cases refuse, and why, in the application's own terms (no HTTP here).

``pixtools.api.errors`` maps each ``Problem`` to a status; a client sees ``detail`` and
``extra`` as they are.
"""

from __future__ import annotations

import enum
from typing import Any

from pixtools.imaging import ImageError, ImageErrorKind
from pixtools.jobspec.job import ResultTooLarge, SpecError


class Problem(enum.Enum):
    """What is wrong with a refused request; the API maps each to a status."""

    #: The request is wrong in itself.
    INVALID = "invalid"
    #: It names something the caller does not have.
    NOT_FOUND = "not_found"
    #: It clashes with the state of what it names.
    CONFLICT = "conflict"
    #: A source over the size limit.
    TOO_LARGE = "too_large"
    #: A source in no supported format.
    UNSUPPORTED = "unsupported"
    #: Well formed, but not workable (a corrupt image, a result over a limit).
    UNPROCESSABLE = "unprocessable"


class JobError(Exception):
    """A request refused: what is wrong, its text, and what a client may act on."""

    def __init__(self, problem: Problem, detail: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail
        self.extra = extra


def field_error(
    field: str, message: str, problem: Problem = Problem.INVALID, **extra: Any
) -> JobError:
    """A refusal naming the offending field (``extra.field``) at the head of its text."""
    return JobError(problem, f"{field}: {message}", {"field": field, **extra})


def not_found(detail: str) -> JobError:
    """A refusal: the caller has no such thing."""
    return JobError(Problem.NOT_FOUND, detail)


def conflict(detail: str, extra: dict[str, Any] | None = None) -> JobError:
    """A refusal: the thing named is in a state that does not allow it."""
    return JobError(Problem.CONFLICT, detail, extra)


def spec_refused(exc: SpecError) -> JobError:
    """A spec wrong in itself, or (``ResultTooLarge``) one whose result exceeds a limit."""
    problem = Problem.UNPROCESSABLE if isinstance(exc, ResultTooLarge) else Problem.INVALID
    return field_error(exc.field, exc.message, problem)


IMAGE_PROBLEMS = {
    ImageErrorKind.UNSUPPORTED: Problem.UNSUPPORTED,
    ImageErrorKind.TOO_LARGE: Problem.UNPROCESSABLE,
    ImageErrorKind.CORRUPT: Problem.UNPROCESSABLE,
    ImageErrorKind.UNUSABLE: Problem.UNPROCESSABLE,
}


def image_refused(field: str, exc: ImageError) -> JobError:
    """A source the image engine refuses, named by the field that carried it."""
    return field_error(field, str(exc), IMAGE_PROBLEMS[exc.kind])
