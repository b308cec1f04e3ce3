"""Personal data at ingest: phone numbers become keyed pseudonyms, complaint text is masked.

The key never has a default (see `tutorwatch.settings.pii_key`): an unkeyed hash of an 11-digit phone
number is reversible by enumerating the ~10^10 possible numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from data_contracts.identifiers import is_valid_resident_id

MOBILE_PATTERN = r"1[3-9]\d{9}"
_MOBILE = re.compile(MOBILE_PATTERN)
# Mobile numbers inside free text, also written with spaces or dashes between the digits.
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)1[ -]?[3-9](?:[ -]?\d){9}(?!\d)")
# 18-character resident ID numbers; only those with a valid check character are masked.
_RESIDENT_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
PHONE_MASK = "1**********"
RESIDENT_ID_MASK = "[身份证号已隐去]"


def pseudonymise(phone: str, key: bytes) -> str:
    """HMAC-SHA256 of the phone number under the key, hex: stable per key, so one parent links across feeds."""
    if not key:
        raise ValueError("refusing to pseudonymise without a key")
    return hmac.new(key, phone.encode("utf-8"), hashlib.sha256).hexdigest()


def is_mobile(phone: str) -> bool:
    return _MOBILE.fullmatch(phone) is not None


def mask_text(text: str) -> str:
    """Mask resident ID numbers (valid check character) and mainland mobile numbers in free text."""
    text = _RESIDENT_ID_IN_TEXT.sub(
        lambda m: RESIDENT_ID_MASK if is_valid_resident_id(m.group(0).upper()) else m.group(0), text
    )
    return _MOBILE_IN_TEXT.sub(PHONE_MASK, text)
