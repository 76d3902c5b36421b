"""What counts as a blank text, defined once for the validators and the OpenAPI description.

JSON Schema patterns are ECMA-262 regular expressions, and ECMA's `\\s` is not Python's: Python
also counts U+001C..U+001F and U+0085 as whitespace, ECMA counts U+FEFF. A text like "\\x1d"
would be valid for the published schema and refused by `str.strip()`. So both sides use this
explicit class, which reads the same in Python and in ECMA-262.
"""

import re

# ECMA-262 WhiteSpace and LineTerminator, which is what `\s` means in a JSON Schema pattern.
WHITESPACE_CLASS = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"

# For a JSON Schema "pattern": at least one character that is not whitespace.
NOT_BLANK_PATTERN = f"[^{WHITESPACE_CLASS}]"

_NOT_BLANK = re.compile(NOT_BLANK_PATTERN)


def is_blank(text: str) -> bool:
    """True when the text is empty or only whitespace (ECMA-262's definition)."""
    return _NOT_BLANK.search(text) is None
