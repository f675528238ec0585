"""Domain errors. Each carries the HTTP status and stable code that every face reports, and a message a
person reads in their language.

A message is English, written as a template of the values it names: ``NotFound("sweep {sweep_id} does not
exist", sweep_id=7)``. ``message`` is it filled in; :meth:`AitipError.message_in` is it translated first
(the REST face answers in the caller's ``Accept-Language``). ``make messages`` extracts every literal message
given to these classes (:data:`MESSAGE_KEYWORDS`, via :func:`extract_messages`); a message chosen among several
is marked with ``N_()`` where it is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .i18n import ENGLISH, N_, normalize, translator


class Phrase:
    """A part of a message that is translated too: a word the message chooses, a validation error's reason.
    Every keyword is a value of the template (``template`` and ``english`` too: the first is positional only)."""

    def __init__(self, template: str, /, **values: Any) -> None:
        self.template, self.values = template, values
        self.english = template.format(**values) if values else template

    @classmethod
    def worded(cls, template: str, english: str, /, **values: Any) -> Phrase:
        """A phrase English readers read as ``english`` rather than the template filled in (pydantic's own
        words, whose template here has lost their plural suffixes)."""
        phrase = cls(template, **values)
        phrase.english = english
        return phrase

    def __str__(self) -> str:
        return self.english

    def __format__(self, spec: str) -> str:
        return format(self.english, spec)

    def in_language(self, language: str | None) -> str:
        """The template translated into ``language`` and filled with the values (each phrase among them
        translated too); the English where the language is English or the translation does not fit the values."""
        chosen = normalize(language)
        if chosen is None or chosen == ENGLISH or not self.template:
            return self.english
        translated = translator(chosen).gettext(self.template)
        if not self.values:
            return translated
        try:
            return translated.format(**{name: value.in_language(chosen) if isinstance(value, Phrase) else value
                                        for name, value in self.values.items()})
        except (KeyError, IndexError, ValueError):  # a catalog entry that names other values: say it in English
            return self.english


# How parts of a list are joined (``a, b``; clauses ``a; b``): in Chinese 、 and ；.
LIST_SEPARATOR = N_(", ")
CLAUSE_SEPARATOR = N_("; ")


class Listed(Phrase):
    """Parts written one after another (``a, b, c``), each a :class:`Phrase` translated in its turn, and so is
    the separator (:data:`LIST_SEPARATOR` or :data:`CLAUSE_SEPARATOR`)."""

    def __init__(self, parts: list[Any], separator: str = LIST_SEPARATOR) -> None:
        super().__init__("")
        self.parts, self.separator = parts, separator
        self.english = separator.join(str(part) for part in parts)

    def in_language(self, language: str | None) -> str:
        return Phrase(self.separator).in_language(language).join(
            part.in_language(language) if isinstance(part, Phrase) else str(part) for part in self.parts)


class InvalidValue(ValueError):
    """A model validator's refusal, written as the platform's errors are (a template and its values, or a
    :class:`Phrase` made elsewhere): pydantic reports it as a ``value_error``, and
    :mod:`aitip.validation_messages` says it in the caller's language through its phrase."""

    def __init__(self, message: str | Phrase, /, **values: Any) -> None:
        self.phrase = message if isinstance(message, Phrase) else Phrase(message, **values)
        super().__init__(self.phrase.english)


class AitipError(Exception):
    """Base of errors a caller can act on; ``detail`` is JSON-safe extra context."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, /, *, detail: Any = None, code: str | None = None, **values: Any) -> None:
        self.phrase = Phrase(message, **values)
        super().__init__(self.phrase.english)
        self.detail = detail
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return self.phrase.english

    def message_in(self, language: str | None) -> str:
        """The message in ``language`` (a tag :func:`aitip.i18n.normalize` reads; English otherwise); the values
        stay as they are (names, numbers, states), but a :class:`Phrase` among them is translated too."""
        return self.phrase.in_language(language)

    def to_json(self, language: str | None = None) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message_in(language), "detail": self.detail}}


class BadRequest(AitipError):
    status = 400
    code = "bad_request"


class InvalidInput(AitipError):
    status = 422
    code = "invalid_input"


class NotAuthenticated(AitipError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(AitipError):
    status = 403
    code = "forbidden"


class NotFound(AitipError):
    status = 404
    code = "not_found"


class Conflict(AitipError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AitipError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AitipError):
    status = 415
    code = "unsupported_media_type"


class ServiceUnavailable(AitipError):
    status = 503
    code = "service_unavailable"


# The callables whose first argument is a message template: a validator's refusal, these classes and every
# subclass defined in the package (``tests/test_errors.py`` checks the list is whole).
MESSAGE_KEYWORDS = ("InvalidValue", "AitipError", "BadRequest", "InvalidInput", "NotAuthenticated", "PermissionDenied",
                    "NotFound", "Conflict", "PayloadTooLarge", "UnsupportedMediaType", "ServiceUnavailable",
                    "DatasetFormatError", "InvalidSearch", "InvalidPageToken", "EndpointError", "EndpointUnreachable", "BadInput")


def extract_messages(fileobj: Any, keywords: Any, comment_tags: Any, options: dict[str, Any]) -> Iterator[Any]:
    """A Babel extractor (``babel.cfg``): Python's, with the error classes as keywords beside ``_()``; their
    messages are reported as ``N_()``'s (Babel reads each keyword's arguments from its own table)."""
    from babel.messages.extract import extract_python

    for lineno, function, message, comments in extract_python(fileobj, [*keywords, *MESSAGE_KEYWORDS],
                                                               comment_tags, options):
        yield lineno, "N_" if function in MESSAGE_KEYWORDS else function, message, comments
