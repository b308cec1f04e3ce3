"""Personal data and complaint texts: phone numbers, resident ID numbers, Chinese complaint wording."""

from __future__ import annotations

import numpy as np

from data_contracts.identifiers import resident_id_check_char

TEMPLATES = {
    "refund_difficulty": (
        "申请退费已经{n}天了一直没有处理，机构一直推脱，请帮忙督促退费，我的电话{phone}",
        "{name}承诺随时可退剩余课时费，现在申请退款没人理，联系电话{phone}",
        "孩子不想上了，剩余{n}节课申请退费被拖延，请监管部门处理。电话{phone}",
    ),
    "closure_or_absconding": (
        "机构突然停课，老师联系不上，请尽快处理，我的电话{phone}",
        "{name}门店关门了，老板跑路，预付的课时费怎么办？电话{phone}",
        "上周还在上课，今天去发现人去楼空，交了{n}千多块钱，请帮忙追回，联系人电话{phone}",
    ),
    "false_advertising": (
        "宣传说保证提分，实际完全没有效果，虚假宣传，电话{phone}",
        "{name}宣传的名师根本不是本人上课，要求说法，电话{phone}",
    ),
    "teaching_quality": (
        "老师经常换人，上课质量很差，孩子学不到东西，电话{phone}",
        "{name}最近经常临时调课停课，课时被消耗但没有上课，电话{phone}",
    ),
    "safety": ("教室消防通道被堵，存在安全隐患，请检查，电话{phone}", "机构场地环境差，孩子上课受伤，电话{phone}"),
    "overcharging": (
        "以优惠名义一次性收取{n}个月学费，超出规定，电话{phone}",
        "{name}强制购买教材资料费，价格不合理，电话{phone}",
    ),
    "other": ("对{name}的服务不满意，希望相关部门关注，电话{phone}", "课程安排与合同不符，电话{phone}"),
}


def phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mainland mobile numbers: 1, then 3-9, then nine digits."""
    return 10_000_000_000 + rng.integers(3, 10, n) * 1_000_000_000 + rng.integers(0, 1_000_000_000, n)


def resident_id(rng: np.random.Generator, area: str) -> str:
    """A parent's resident ID number with a valid MOD 11-2 check character."""
    birth = np.datetime64("1975-01-01") + int(rng.integers(0, 20 * 365))
    first17 = f"{area}{str(birth).replace('-', '')}{int(rng.integers(0, 1000)):03d}"
    return first17 + resident_id_check_char(first17)


def complaint_text(rng: np.random.Generator, category: str, name: str, phone: str, area: str,
                   with_id: bool) -> tuple[str, list[str]]:
    """The complaint's wording and the personal numbers written into it."""
    templates = TEMPLATES[category]
    text = templates[int(rng.integers(0, len(templates)))].format(
        n=int(rng.integers(3, 40)), name=name, phone=phone)
    planted = [phone]
    if with_id:
        rid = resident_id(rng, area)
        text += f"，身份证号{rid}"
        planted.append(rid)
    return text, planted
