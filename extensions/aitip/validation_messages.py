"""A refused request's validation errors as one :class:`~aitip.errors.InvalidInput` a person can read in their
language.

English readers get pydantic's own words, as before; for another language each error type the platform's
models can raise has a template here (pydantic's wording without its English plural suffixes), filled with
the error's context (``min_length``, ``pattern``...). A type not listed stays in pydantic's English. A model's
own validator says what is wrong as ``InvalidValue("...", **values)``, translated the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .errors import InvalidInput, InvalidValue, Phrase
from .i18n import N_

# pydantic's error type -> its text, with the placeholders of the error's context.
REASONS = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "json_invalid": N_("Invalid JSON: {error}"),
    "json_type": N_("JSON input should be string, bytes or bytearray"),
    "model_type": N_("Input should be a valid dictionary or instance of {class_name}"),
    "model_attributes_type": N_("Input should be a valid dictionary or object to extract fields from"),
    "none_required": N_("Input should be None"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "multiple_of": N_("Input should be a multiple of {multiple_of}"),
    "finite_number": N_("Input should be a finite number"),
    "too_short": N_("{field_type} should have at least {min_length} items after validation, not {actual_length}"),
    "too_long": N_("{field_type} should have at most {max_length} items after validation, not {actual_length}"),
    "string_type": N_("Input should be a valid string"),
    "string_unicode": N_("Input should be a valid string, unable to parse raw data as a unicode string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "enum": N_("Input should be {expected}"),
    "literal_error": N_("Input should be {expected}"),
    "dict_type": N_("Input should be a valid dictionary"),
    "list_type": N_("Input should be a valid list"),
    "tuple_type": N_("Input should be a valid tuple"),
    "set_type": N_("Input should be a valid set"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_parsing_size": N_("Unable to parse input string as an integer, exceeded maximum size"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bytes_type": N_("Input should be a valid bytes"),
    "value_error": N_("Value error, {error}"),
    "assertion_error": N_("Assertion failed, {error}"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD, {error}"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime, {error}"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime or date, {error}"),
    "timezone_naive": N_("Input should not have timezone info"),
    "timezone_aware": N_("Input should have timezone info"),
    "url_type": N_("URL input should be a string or URL"),
    "url_parsing": N_("Input should be a valid URL, {error}"),
    "url_scheme": N_("URL scheme should be {expected_schemes}"),
    "union_tag_invalid": N_("Input tag '{tag}' found using {discriminator} does not match any of the expected "
                            "tags: {expected_tags}"),
    "union_tag_not_found": N_("Unable to extract tag using discriminator {discriminator}"),
}


def _context_value(value: Any) -> Any:
    """A value of an error's context as the message takes it: a validator's :class:`InvalidValue` as its phrase
    (translated too), anything else as text or a number."""
    if isinstance(value, InvalidValue):
        return value.phrase
    return value if isinstance(value, str | int | float) else str(value)


def reason(error: dict[str, Any]) -> Phrase:
    """One of pydantic's errors (``ValidationError.errors()``) as a phrase: pydantic's words in English."""
    template = REASONS.get(error["type"])
    context = {name: _context_value(value) for name, value in (error.get("ctx") or {}).items()}
    if template is None:
        return Phrase(str(error["msg"]))
    return Phrase.worded(template, str(error["msg"]), **context)


def refusal(exc: ValidationError, where: str, *, unnamed: str) -> InvalidInput:
    """The 422 for ``exc``: its first error in the message (and how many more), every one in ``detail``.
    ``where`` is a phrase marked with ``N_()`` ("request body"); ``unnamed`` names an error of the whole."""
    errors = exc.errors(include_url=False, include_input=False)
    detail = [{"field": ".".join(str(part) for part in item["loc"]) or unnamed, "message": item["msg"],
               "type": item["type"]} for item in errors]
    values = {"where": Phrase(where), "field": detail[0]["field"], "reason": reason(errors[0])}
    if len(detail) == 1:
        return InvalidInput("invalid {where}: {field}: {reason}", detail=detail, **values)
    return InvalidInput("invalid {where}: {field}: {reason} (and {more} more)", detail=detail, more=len(detail) - 1,
                        **values)
