"""Check characters of the unified social credit code (GB 32100-2015) and the resident ID (GB 11643)."""

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK = "10X98765432"


def uscc_check_char(first17: str) -> str:
    """The 18th character for the first 17: 31 - (sum mod 31), with 31 mapping to 0."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: object) -> bool:
    if not isinstance(code, str) or len(code) != 18 or any(c not in _USCC_VALUE for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a mainland resident ID number."""
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK[total % 11]


def is_valid_resident_id(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    return resident_id_check_char(number[:17]) == number[17].upper()
